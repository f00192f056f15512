"""Components that only ever merge, for the standing index: a union-find that keeps members.

Every node carries a component label; each label lists its members. Merging relabels the smaller
components' members into the largest (union by size), so a node is relabelled O(log n) times
over any sequence of merges, and a component's members are found in time proportional to them.
"""

from __future__ import annotations

import numpy as np

from ._growable import Columns
from .clusters import connected_clusters

__all__ = ["Partition"]


class Partition:
    """Nodes ``0..n-1`` (added in order) in disjoint components; labels are node ids."""

    def __init__(self) -> None:
        self._label = Columns({"label": ((), np.int64)})
        self._members: dict[int, list[int]] = {}
        self._moved: list[int] = []  # nodes relabelled since the last take_moved()

    def add(self, count: int) -> None:
        """Append ``count`` nodes, each its own component."""
        start = self._label.n
        new = np.arange(start, start + count, dtype=np.int64)
        self._label.append(label=new)
        self._members.update((i, [i]) for i in new.tolist())

    def labels(self, nodes: np.ndarray) -> np.ndarray:
        """int64, shape like ``nodes``: each node's component label."""
        return self._label.column("label")[nodes]

    def members(self, label: int) -> np.ndarray:
        """int64 (m,): the nodes of component ``label`` (any order)."""
        return np.asarray(self._members[label], dtype=np.int64)

    def restrict(self, label: int, nodes: np.ndarray) -> None:
        """Keep only ``nodes`` (a subset of its members) in component ``label``; the others
        must never be named again (withdrawn records)."""
        if nodes.size:
            self._members[label] = nodes.tolist()
        else:
            del self._members[label]

    def union(self, u: np.ndarray, v: np.ndarray) -> list[tuple[int, int]]:
        """Merge the components of ``u[i]`` and ``v[i]`` for every i; returns (gone, kept) for
        each label that ceased to exist and the label it was merged into."""
        lu, lv = self.labels(u), self.labels(v)
        differ = lu != lv
        if not differ.any():
            return []
        ends = np.concatenate([lu[differ], lv[differ]])
        distinct, inverse = np.unique(ends, return_inverse=True)
        half = int(np.count_nonzero(differ))
        groups = connected_clusters(len(distinct), inverse[:half], inverse[half:])
        order = np.argsort(groups, kind="stable")
        starts = np.flatnonzero(np.diff(groups[order])) + 1
        merges: list[tuple[int, int]] = []
        for group in np.split(distinct[order], starts):
            merges.extend(self._merge(group.tolist()))
        return merges

    def _merge(self, group: list[int]) -> list[tuple[int, int]]:
        big = max(group, key=lambda g: len(self._members[g]))
        label = self._label.column("label")
        gone = [g for g in group if g != big]
        for g in gone:
            moved = self._members.pop(g)
            label[np.asarray(moved, dtype=np.int64)] = big
            self._members[big].extend(moved)
            self._moved.extend(moved)
        return [(g, big) for g in gone]

    def take_moved(self) -> np.ndarray:
        """int64: the nodes whose label changed since the last call (each once, any order)."""
        moved = np.unique(np.asarray(self._moved, dtype=np.int64))
        self._moved = []
        return moved
