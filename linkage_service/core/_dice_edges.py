"""The standing index's Dice edges, kept per component, so that solving a component again needs
no filter comparisons: the offline linker's Dice pairs are read off the kept edges.

An edge is an unordered pair of node ids with its count of common bits. Edges are found once,
when the later of the two records arrives (``StandingIndex._dice_edges``), at a threshold a hair
below the offline one, so they are a superset of every pair the offline linker accepts; anonlink's
acceptance rule (:func:`accepted_pairs`) then picks exactly the pairs ``dice_candidates`` would
return, in its order. Without this a component of 200,000 records cost all its pairs' Dice again
on every change (about a minute at a standing index of 1M).

Components whose edges are not known (restored from the store, which keeps links and labels but
not edges) are marked *unknown*; merging with one makes the result unknown, and the index finds
an unknown component's edges again the first time it solves it.
"""

from __future__ import annotations

import numpy as np

from .candidates import CandidatePairs, sorted_candidates
from .dice import anonlink_max_deltas

__all__ = ["EdgeStore", "accepted_pairs"]


def accepted_pairs(
    left: np.ndarray,
    right: np.ndarray,
    common: np.ndarray,
    pa: np.ndarray,
    pb: np.ndarray,
    threshold: float,
) -> CandidatePairs:
    """The pairs anonlink's rule accepts at ``threshold`` (``dice_reference`` spells it out),
    from each pair's common bits and popcounts (left first), in ``CandidatePairs`` order."""
    pa, pb = pa.astype(np.int64), pb.astype(np.int64)
    total = (pa + pb).astype(np.float64)
    scores = np.zeros(left.shape, np.float64)
    np.divide((2 * common.astype(np.int64)).astype(np.float64), total, out=scores, where=total > 0)
    keep = (
        (pa > 0) & (np.abs(pa - pb) <= anonlink_max_deltas(pa, threshold)) & (scores >= threshold)
    )
    return sorted_candidates(scores[keep], left[keep], right[keep])


class EdgeStore:
    """Edges ``(u, v, common)`` filed under component labels."""

    def __init__(self) -> None:
        self._parts: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._unknown: set[int] = set()

    def add(self, label: np.ndarray, u: np.ndarray, v: np.ndarray, common: np.ndarray) -> None:
        """File new edges under ``label[k]``, the component holding both ends of edge k. Each
        unordered pair must be new to the store; within the call it may come twice (both
        orientations, as when a batch meets itself) and self-pairs are dropped."""
        lo, hi = np.minimum(u, v), np.maximum(u, v)
        distinct = lo != hi
        lo, hi, common, label = lo[distinct], hi[distinct], common[distinct], label[distinct]
        if not lo.size:
            return
        _, first = np.unique(lo * (int(hi.max()) + 1) + hi, return_index=True)
        u, v, common, label = lo[first], hi[first], common[first], label[first]
        order = np.argsort(label, kind="stable")
        starts = np.flatnonzero(np.diff(label[order])) + 1
        for part in np.split(order, starts):
            self._parts.setdefault(int(label[part[0]]), []).append((u[part], v[part], common[part]))

    def merged(self, merges: list[tuple[int, int]]) -> None:
        """Each component ``old`` of ``merges`` was merged into ``new``."""
        for old, new in merges:
            if old in self._unknown:
                self._unknown.discard(old)
                self._unknown.add(new)
            moved = self._parts.pop(old, None)
            if moved:
                self._parts.setdefault(new, []).extend(moved)

    def mark_unknown(self, labels: np.ndarray) -> None:
        self._unknown.update(np.unique(labels).tolist())

    def known(self, labels: list[int]) -> bool:
        return self._unknown.isdisjoint(labels)

    def take(self, label: int, active: np.ndarray) -> tuple[np.ndarray, ...]:
        """(u, v, common) of component ``label``: its edges between active nodes, each once,
        u < v; the component's edges are kept pruned to these, in one part."""
        parts = self._parts.pop(label, [])
        self._unknown.discard(label)
        if not parts:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.int32)
        u, v, common = (np.concatenate([p[i] for p in parts]) for i in range(3))
        keep = active[u] & active[v]
        if not keep.all():
            u, v, common = u[keep], v[keep], common[keep]
        self._parts[label] = [(u, v, common)]
        return u, v, common

    def forget(self, label: int) -> None:
        """Component ``label`` has no active nodes left."""
        self._parts.pop(label, None)
        self._unknown.discard(label)
