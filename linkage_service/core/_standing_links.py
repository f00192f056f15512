"""Links of the standing index as a structure of arrays, and solving one region offline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._dice_edges import accepted_pairs
from .candidates import CandidatePairs
from .decisions import DecisionRule
from .linking import AgencyRecords, DicePairs, link_agencies

__all__ = ["StandingLinks", "changed_ends", "merged_links", "no_links", "region_links"]


@dataclass(frozen=True, eq=False)
class StandingLinks:
    """Links as a structure of arrays, each of shape (m,), sorted by (key_a, key_b).

    Attributes:
        key_a, key_b: int64 record keys, ``key_a < key_b``; the two records belong to different
            agencies.
        decision: int8, ``MATCH`` or ``POSSIBLE`` (after promotion of corroborated links).
        score: float64 Dice of the pair.
    """

    key_a: np.ndarray
    key_b: np.ndarray
    decision: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return int(self.key_a.shape[0])


def no_links() -> StandingLinks:
    """No links, with the documented dtypes."""
    empty = np.zeros(0, np.int64)
    return StandingLinks(empty, empty, np.zeros(0, np.int8), np.zeros(0, np.float64))


def region_links(
    records: Sequence[AgencyRecords],
    nodes: Sequence[np.ndarray],
    rule: DecisionRule,
    threads: int | None,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> StandingLinks:
    """``link_agencies`` on the agencies' ``records`` (canonical order, at least two), whose
    rows are the ascending ids ``nodes[i]``; links between ids, a < b, sorted by (a, b).
    ``edges`` (u, v, common), node ids, u < v: a superset of the region's Dice pairs at the
    rule's thresholds; given, the Dice pairs are read off them instead of computed."""
    dice = None if edges is None else edge_pairs(records, nodes, edges)
    pairs = link_agencies(records, rule, threads=threads, dice=dice)
    a = np.concatenate([np.zeros(0, np.int64)] + [nodes[p.a][p.left] for p in pairs])
    b = np.concatenate([np.zeros(0, np.int64)] + [nodes[p.b][p.right] for p in pairs])
    decision = np.concatenate([np.zeros(0, np.int8)] + [p.decisions for p in pairs])
    score = np.concatenate([np.zeros(0, np.float64)] + [p.scores for p in pairs])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((hi, lo))
    return StandingLinks(lo[order], hi[order], decision[order], score[order])


def merged_links(parts: list[StandingLinks], keys: np.ndarray | None = None) -> StandingLinks:
    """``parts`` (links between node ids) as one set of links between ``keys[id]`` (default:
    the ids themselves), sorted by (key_a, key_b)."""
    if not parts:
        return no_links()
    a = np.concatenate([p.key_a for p in parts])
    b = np.concatenate([p.key_b for p in parts])
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    return StandingLinks(
        a if keys is None else keys[a],
        b if keys is None else keys[b],
        np.concatenate([p.decision for p in parts])[order],
        np.concatenate([p.score for p in parts])[order],
    )


def changed_ends(before: StandingLinks, after: StandingLinks) -> np.ndarray:
    """int64, ascending: the ends of every link in one set and not, identically (same pair,
    decision and score bits), in the other. Each set holds a pair at most once."""
    width = int(max(before.key_b.max(initial=0), after.key_b.max(initial=0))) + 1
    code_before = before.key_a * width + before.key_b
    code_after = after.key_a * width + after.key_b
    _, i, j = np.intersect1d(code_before, code_after, assume_unique=True, return_indices=True)
    same = (before.decision[i] == after.decision[j]) & (
        before.score[i].view(np.uint64) == after.score[j].view(np.uint64)
    )
    kept_before = np.zeros(len(before), bool)
    kept_after = np.zeros(len(after), bool)
    kept_before[i[same]] = True
    kept_after[j[same]] = True
    return np.unique(
        np.concatenate(
            [
                before.key_a[~kept_before],
                before.key_b[~kept_before],
                after.key_a[~kept_after],
                after.key_b[~kept_after],
            ]
        )
    )


def edge_pairs(
    records: Sequence[AgencyRecords],
    nodes: Sequence[np.ndarray],
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> DicePairs:
    """What ``dice_candidates`` returns for each pair of the region's agencies, read off the
    kept edges with anonlink's rule (each orientation judged with its own left popcount)."""
    u, v, common = edges
    region = np.concatenate(nodes)
    order = np.argsort(region, kind="stable")
    group = np.repeat(np.arange(len(nodes)), [n.size for n in nodes])[order]
    position = np.concatenate([np.arange(n.size) for n in nodes])[order]
    at_u, at_v = np.searchsorted(region[order], u), np.searchsorted(region[order], v)
    gu, gv, pu, pv = group[at_u], group[at_v], position[at_u], position[at_v]
    popcounts = [r.matrix.popcounts for r in records]

    def pairs(i: int, j: int, threshold: float) -> CandidatePairs:
        forward = (gu == i) & (gv == j)
        backward = (gu == j) & (gv == i)
        left = np.concatenate([pu[forward], pv[backward]])
        right = np.concatenate([pv[forward], pu[backward]])
        shared = np.concatenate([common[forward], common[backward]])
        return accepted_pairs(
            left, right, shared, popcounts[i][left], popcounts[j][right], threshold
        )

    return pairs
