"""Greedy one-to-one solving of scored candidate pairs between two agencies.

Edges are ranked by ``(-weight, left, right)``: higher weight first, ties broken by the smaller
left index, then the smaller right index, then (for exact duplicate edges only) by input position.
Greedy accepts an edge iff neither endpoint was taken by a higher-ranked accepted edge.

``greedy_one_to_one`` computes exactly that in numpy by rounds of *locally dominant* edges: an edge
that ranks first at both of its endpoints among the remaining edges is accepted by sequential
greedy too (nothing above it can block it), and so are all such edges at once since they share no
endpoint. Removing their endpoints' edges leaves a smaller graph on which greedy continues
unchanged. ``greedy_one_to_one_reference`` is the plain sequential loop the tests compare against.
"""

from __future__ import annotations

import numpy as np

from linkage_service.core.arrays import INT64_MAX, as_index_array
from linkage_service.core.errors import CoreError

__all__ = ["greedy_one_to_one", "greedy_one_to_one_reference"]

# A round costs time in proportion to the edges still live. On random candidates each round
# removes most of them (5 rounds for 200k edges), but an adversarial chain (weights falling along
# a path) loses two edges per round. Once a round removes less than MIN_PROGRESS of the live
# edges, after MAX_ROUNDS, or when few edges are left, the sequential loop finishes the rest, so
# the worst case stays near the reference's cost.
MIN_PROGRESS = 1 / 16
MAX_ROUNDS = 32
SEQUENTIAL_TAIL = 64
# Per-node scratch arrays are indexed by record index while that keeps them within this many
# slots per edge; beyond it (few edges, huge indices) the indices are renumbered first.
DIRECT_INDEX_FACTOR = 4


def _as_weights(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise CoreError(f"weights must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.float64)
    if arr.dtype.kind not in "iuf":
        raise CoreError(f"weights must be real numbers, got dtype {arr.dtype}")
    # float64 holds every float16/32 exactly; integer weights above 2**53 may round.
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise CoreError("weights must be finite (found NaN or infinity)")
    return arr


def _validated(
    weights: np.ndarray, left: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = _as_weights(weights)
    lft = as_index_array("left", left)
    rgt = as_index_array("right", right)
    if not len(w) == len(lft) == len(rgt):
        raise CoreError(
            f"weights, left and right must have equal lengths, got {len(w)}, {len(lft)}, {len(rgt)}"
        )
    return w, lft, rgt


def _rank_order(w: np.ndarray, lft: np.ndarray, rgt: np.ndarray) -> np.ndarray:
    """Edge indices (int64, shape (n,)) in rank order; lexsort is stable, so duplicates keep
    their input order."""
    return np.lexsort((rgt, lft, -w)).astype(np.int64, copy=False)


def greedy_one_to_one_reference(
    weights: np.ndarray, left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """Sequential greedy one-to-one matching: the obviously correct twin of ``greedy_one_to_one``.

    Same arguments, validation and result. It ranks with Python's stable ``sorted`` rather than
    the fast path's ``np.lexsort`` so the two share no ordering code.
    """
    w, lft, rgt = (a.tolist() for a in _validated(weights, left, right))
    ranked = sorted(range(len(w)), key=lambda i: (-w[i], lft[i], rgt[i]))
    used_left: set[int] = set()
    used_right: set[int] = set()
    accepted: list[int] = []
    for i in ranked:
        if lft[i] not in used_left and rgt[i] not in used_right:
            used_left.add(lft[i])
            used_right.add(rgt[i])
            accepted.append(i)
    return np.asarray(accepted, dtype=np.int64)


def _node_ids(idx: np.ndarray) -> tuple[np.ndarray, int]:
    """Node ids usable as indices into per-node arrays, and how many slots those arrays need.

    Record indices are used directly while per-node arrays stay about the size of the edge list;
    sparse, huge indices are renumbered densely (one sort) so memory never follows their values.
    """
    size = int(idx.max()) + 1
    if size <= DIRECT_INDEX_FACTOR * len(idx):
        return idx, size
    uniq, dense = np.unique(idx, return_inverse=True)
    return dense.astype(np.int64, copy=False), len(uniq)


def _first_at_node(
    node: np.ndarray, size: int, w: np.ndarray, other: np.ndarray, pos: np.ndarray
) -> np.ndarray:
    """Boolean mask, shape like ``node``: the edge ranks first among the given edges at its node.

    All edges at one node share that endpoint, so their rank order is (-weight, other endpoint,
    input position); each key is settled by one scatter-reduction, so no sort is needed.
    """
    best_w = np.full(size, -np.inf)
    np.maximum.at(best_w, node, w)
    top = w == best_w[node]
    best_o = np.full(size, INT64_MAX)
    np.minimum.at(best_o, node[top], other[top])
    top &= other == best_o[node]
    best_p = np.full(size, INT64_MAX)
    np.minimum.at(best_p, node[top], pos[top])
    return top & (pos == best_p[node])


def _sequential(w: np.ndarray, lft: np.ndarray, rgt: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Plain greedy over the edges given, any order; returns accepted ``pos`` values."""
    order = _rank_order(w, lft, rgt)
    used_l: set[int] = set()
    used_r: set[int] = set()
    accepted: list[int] = []
    for k, a, b in zip(pos[order].tolist(), lft[order].tolist(), rgt[order].tolist(), strict=True):
        if a not in used_l and b not in used_r:
            used_l.add(a)
            used_r.add(b)
            accepted.append(k)
    return np.asarray(accepted, dtype=np.int64)


def greedy_one_to_one(weights: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact greedy one-to-one matching of the candidate edges ``(left[i], right[i], weights[i])``.

    Args:
        weights: shape (n,), real and finite (Dice scores usually); any order.
        left: shape (n,), integer record indices >= 0 in the first agency.
        right: shape (n,), integer record indices >= 0 in the second agency (its own index space).

    Returns:
        int64 array, shape (m,) with m <= n: the input positions of the accepted edges, in rank
        order (descending weight, then ascending left, then ascending right; of exact duplicate
        edges the first in input order). Each left and each right index appears in at most one
        accepted edge.

    Raises:
        CoreError: arrays not 1-D or of unequal lengths, non-integer or negative indices,
            non-finite or non-real weights.
    """
    w0, l0, r0 = _validated(weights, left, right)
    w, lft, rgt, pos = w0, l0, r0, np.arange(len(w0), dtype=np.int64)
    found: list[np.ndarray] = []
    if len(w) > SEQUENTIAL_TAIL:
        nl, size_l = _node_ids(lft)
        nr, size_r = _node_ids(rgt)
        used_l = np.zeros(size_l, dtype=bool)
        used_r = np.zeros(size_r, dtype=bool)
        for _ in range(MAX_ROUNDS):
            live_before = len(w)
            dominant = _first_at_node(nl, size_l, w, rgt, pos)
            dominant &= _first_at_node(nr, size_r, w, lft, pos)
            found.append(pos[dominant])
            used_l[nl[dominant]] = True
            used_r[nr[dominant]] = True
            # An edge touching a matched record can never be accepted: drop it for good.
            live = ~(used_l[nl] | used_r[nr])
            w, lft, rgt, pos, nl, nr = (a[live] for a in (w, lft, rgt, pos, nl, nr))
            if len(w) <= SEQUENTIAL_TAIL or live_before - len(w) < MIN_PROGRESS * live_before:
                break
    found.append(_sequential(w, lft, rgt, pos))
    accepted = np.concatenate(found)
    return accepted[_rank_order(w0[accepted], l0[accepted], r0[accepted])]
