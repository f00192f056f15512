"""Who holds each identifier value, for the standing index, and which values are too frequent.

Offline linking first clears, per agency and column, every value held by more than
``MAX_SHARED_IDENTIFIER`` of the agency's records (:func:`entities.frequent_identifiers_cleared`).
That count is global to the agency, not local to a component of the candidate graph, so the
standing index keeps it here, over the active records, and hands the sub-problems identifiers
already cleared. Clearing is idempotent on such input (a value still present is held by at most
the limit of the agency's records, so by at most the limit inside any component), so the offline
function run on a component sees exactly the identifiers it would have seen on everything.

The component rule that goes with it: every active record whose value is *not* cleared is joined
to every other record, of any agency, holding the same uncleared value in that column (whatever
their Dice). A value crossing the limit changes the identifiers of records already linked, so
their component is reported as touched and solved again.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .entities import MAX_SHARED_IDENTIFIER

__all__ = ["SharedIdentifiers"]

Holders = dict[int, list[int]]  # agency index -> active nodes holding the value


class SharedIdentifiers:
    """Per column, value -> agency -> active nodes holding it.

    ``add`` and ``remove`` update the holders and the caller's ``cleared`` flags (bool, one row
    per node, one column per identifier column), and return the node pairs (u, v) to join and the
    nodes whose identifiers changed without being added or removed themselves."""

    def __init__(self, n_columns: int, limit: int = MAX_SHARED_IDENTIFIER) -> None:
        self._columns: list[dict[int, Holders]] = [{} for _ in range(n_columns)]
        self._limit = limit

    def add(
        self, agency: int, nodes: np.ndarray, ids: np.ndarray, cleared: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Register ``nodes`` (int64 (m,)) of ``agency``, identifiers ``ids`` uint64 (m, k)."""
        joins: list[int] = []
        touched: list[int] = []
        for col, value, new in _by_value(nodes, ids):
            per = self._columns[col].setdefault(value, {})
            held = per.setdefault(agency, [])
            before = len(held)
            held.extend(new)
            if len(held) <= self._limit:
                joins.extend(self._uncleared(per))
                continue
            cleared[np.asarray(held if before <= self._limit else new), col] = True
            if before <= self._limit:
                touched.extend(held[:before])
        return (*_chains(joins), np.asarray(touched, dtype=np.int64))

    def remove(
        self, agency: int, nodes: np.ndarray, ids: np.ndarray, cleared: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Forget ``nodes`` of ``agency`` (withdrawn); same arguments and result as ``add``."""
        joins: list[int] = []
        touched: list[int] = []
        for col, value, gone in _by_value(nodes, ids):
            per = self._columns[col][value]
            before = len(per[agency])
            leaving = set(gone)
            held = per[agency] = [n for n in per[agency] if n not in leaving]
            if before > self._limit >= len(held) and held:
                cleared[np.asarray(held), col] = False
                touched.extend(held)
                joins.extend(self._uncleared(per))
            if not held:
                del per[agency]
                if not per:
                    del self._columns[col][value]
        return (*_chains(joins), np.asarray(touched, dtype=np.int64))

    def _uncleared(self, per: Holders) -> Iterator[int]:
        """A run of nodes to join into one component, then -1: the value's uncleared holders."""
        for held in per.values():
            if len(held) <= self._limit:
                yield from held
        yield -1


def _by_value(nodes: np.ndarray, ids: np.ndarray) -> Iterator[tuple[int, int, list[int]]]:
    """(column, value, nodes holding it) for every non-zero value of ``ids``."""
    for col in range(ids.shape[1]):
        present = np.flatnonzero(ids[:, col])
        values, inverse = np.unique(ids[present, col], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.flatnonzero(np.diff(inverse[order])) + 1
        groups = np.split(nodes[present[order]], starts) if present.size else []
        yield from zip(
            (col,) * len(values), values.tolist(), (g.tolist() for g in groups), strict=True
        )


def _chains(runs: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Edges (u, v), int64, joining each -1-terminated run of ``runs`` into a chain."""
    arr = np.asarray(runs, dtype=np.int64)
    if arr.size < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    u, v = arr[:-1], arr[1:]
    keep = (u >= 0) & (v >= 0)
    return u[keep], v[keep]
