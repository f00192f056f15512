"""Duplicates inside one agency: which records are the same child held twice.

Two records of one agency are joined when their Dice reaches the ``duplicate`` threshold, or when
they carry an equal valid identifier and their Dice reaches ``identifier_floor`` (a sibling
recorded with the child's NHS number shares little else). Joins are made strongest first, and a
join that would put two different valid identifiers into one entity is refused, so a record
close to both twins cannot bridge them into one child.

An identifier value held by more than ``MAX_SHARED_IDENTIFIER`` records of one agency is not
used to join or to find candidates: real numbers are not shared that widely, defaults and test
placeholders are, and an exact join on them would grow quadratically.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_SHARED_IDENTIFIER", "constrained_entities", "frequent_identifiers_cleared"]

MAX_SHARED_IDENTIFIER = 5


def frequent_identifiers_cleared(identifiers: np.ndarray) -> np.ndarray:
    """uint64 (n, k): ``identifiers`` with values held by too many records set to 0 (absent)."""
    out = identifiers.copy()
    for col in range(out.shape[1]):
        values, counts = np.unique(out[:, col], return_counts=True)
        frequent = values[(counts > MAX_SHARED_IDENTIFIER) & (values != 0)]
        if frequent.size:
            out[np.isin(out[:, col], frequent), col] = 0
    return out


def constrained_entities(
    n: int, left: np.ndarray, right: np.ndarray, scores: np.ndarray, identifiers: np.ndarray
) -> np.ndarray:
    """int64 (n,): entity label per record (smallest record index of its entity).

    ``left``/``right``/``scores`` are candidate joins (any order, duplicates allowed);
    ``identifiers`` is uint64 (n, k), 0 = absent. Joins are taken by descending score, then
    ascending (left, right); a join whose two entities hold different non-zero values in some
    identifier column is skipped."""
    parent = list(range(n))
    held = {i: identifiers[i] for i in np.unique(np.concatenate([left, right])).tolist()}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in np.lexsort((right, left, -scores)).tolist():
        a, b = root(int(left[k])), root(int(right[k]))
        if a == b:
            continue
        ids_a, ids_b = held[a], held[b]
        if ((ids_a != 0) & (ids_b != 0) & (ids_a != ids_b)).any():
            continue
        a, b = min(a, b), max(a, b)
        parent[b] = a
        held[a] = np.where(ids_a != 0, ids_a, ids_b)
    out = np.arange(n, dtype=np.int64)  # a record in no join is its own entity
    touched = list(held)
    out[touched] = [root(i) for i in touched]
    return out
