"""The standing index: the offline links of all active records, kept up to date batch by batch.

Agencies' batches arrive one after another and records may be withdrawn. At every moment
``StandingIndex.links()`` equals what :func:`linking.link_agencies` (with its promotion of
corroborated links) returns when run on all active records at once, with agencies in order of
their first appearance in the index and each agency's records in key order.

Why it can be incremental: the offline result is local to connected components of a *candidate
graph* over the records. Its edges are

* across agencies: Dice at or above ``rule.possible``, or an equal identifier value (any Dice);
* inside one agency: Dice at or above ``rule.duplicate``, or an equal identifier value.

Every pair the offline function ever scores, joins into an entity, solves or promotes is such an
edge, so running it on one component (or a union of them) gives exactly that component's share of
the full result: duplicate entities, greedy one-to-one (its ties break by record index, an order a
component's key-ordered records keep) and corroboration (components of match links) never look
past the component. Dice edges are found with a threshold a hair lower than the offline one (a
superset is harmless; :mod:`._similar_pairs`). The agencies' order matters, though rarely: the
Dice kernel's popcount pre-filter (anonlink's) is bounded by the left record's popcount, so a pair
exactly at a threshold can pass in one orientation and not the other; sub-problems therefore keep
the index's canonical order.

The one global step is the clearing of identifier values held by more than
``entities.MAX_SHARED_IDENTIFIER`` of one agency's records: its count runs over the whole agency.
:mod:`._shared_identifiers` keeps those counts over the active records, joins only *uncleared*
values into the graph (so a placeholder held by thousands does not make one giant component) and
the sub-problems get identifiers already cleared, on which the offline clearing is a no-op.

Components only merge (union-find). After a withdrawal a component may be a superset of a true
component, which is still exact: the sub-problem recomputes everything from its records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._dice_edges import EdgeStore
from ._growable import Columns
from ._shared_identifiers import SharedIdentifiers
from ._similar_pairs import similar_pairs
from ._standing_checks import as_keys, check_saved_state, checked_records
from ._standing_links import StandingLinks, changed_ends, merged_links, no_links, region_links
from ._union_find import Partition
from .bitmatrix import BitMatrix, check_n_bits
from .decisions import DecisionRule
from .errors import CoreError
from .linking import AgencyRecords

__all__ = ["RegionUpdate", "StandingIndex", "StandingLinks"]

# Regions of fewer records are solved on one thread: starting worker threads for each of the
# offline function's small Dice calls costs more than they save.
SINGLE_THREAD_RECORDS = 1000
# Withdrawn rows stay in an agency's buffer (filtered out of candidates) until they are more than
# half of at least this many rows; then the buffer is compacted.
COMPACT_MIN_ROWS = 64


@dataclass(frozen=True, eq=False)
class RegionUpdate:
    """What one ``add`` or ``withdraw`` changed: replace every stored link with an end in
    ``keys`` or ``removed`` by ``links``; links elsewhere are unchanged.

    Attributes:
        keys: int64 (r,), ascending: the active records of the re-solved region.
        agency: int64 (r,): each region record's agency index (into ``StandingIndex.agencies``).
        removed: int64 (w,), ascending: the keys this call withdrew (empty for ``add``).
        links: every current link inside the region (both ends are in ``keys``).
        components: how many components were solved again (the cost, with ``keys.size``).
        changed: int64, ascending: the region's keys whose links differ from before the call
            (a link added, dropped, or with another decision or score), and the keys added. A
            link between two keys not in ``changed`` is unchanged, so a caller that stores or
            releases links need only look at these (and ``removed``).
        relabelled: int64, ascending: the keys whose ``component_labels`` value changed
            (the keys added included).
        edges: (key_u, key_v, common bits) of the Dice edges this call found (``add`` only):
            what ``restore`` needs, with the labels and links, to go on without comparing.
    """

    keys: np.ndarray
    agency: np.ndarray
    removed: np.ndarray
    links: StandingLinks
    components: int
    changed: np.ndarray
    relabelled: np.ndarray
    edges: tuple[np.ndarray, np.ndarray, np.ndarray] = (
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros(0, np.int32),
    )


class StandingIndex:
    """Active records of several agencies and their current links (module docstring).

    Args:
        n_bits: filter length, a positive multiple of 64.
        n_identifiers: identifier columns per record (uint64 tokens, 0 = absent).
        rule: the decision rule ``link_agencies`` applies.
        threads: worker threads for the Dice kernel (default: every core).

    ``components_solved`` and ``records_solved`` count the work done so far (the sum of every
    update's ``components`` and region size).
    """

    def __init__(
        self, n_bits: int, n_identifiers: int, rule: DecisionRule, threads: int | None = None
    ) -> None:
        check_n_bits(n_bits)
        if isinstance(n_identifiers, bool) or not isinstance(n_identifiers, int | np.integer):
            raise CoreError(f"n_identifiers must be an int >= 0, got {n_identifiers!r}")
        if n_identifiers < 0:
            raise CoreError(f"n_identifiers must be >= 0, got {n_identifiers}")
        if not isinstance(rule, DecisionRule):
            raise CoreError(f"rule must be a DecisionRule, got {type(rule).__name__}")
        self.n_bits, self.n_identifiers, self.rule = int(n_bits), int(n_identifiers), rule
        self._threads = threads
        k = self.n_identifiers
        self._nodes = Columns(
            {
                "key": ((), np.int64),
                # a component's label as component_labels reports it, kept at its root node:
                # the root's key, or the label the component was restored with
                "label": ((), np.int64),
                "agency": ((), np.int64),
                "row": ((), np.int64),
                "active": ((), np.bool_),
                "ids": ((k,), np.uint64),
                "cleared": ((k,), np.bool_),
            }
        )
        self._names: list[str] = []
        self._rows: list[Columns] = []  # per agency: words, popcounts, node
        self._active_rows: list[int] = []
        self._partition = Partition()
        self._shared = SharedIdentifiers(k)
        self._links: dict[int, StandingLinks] = {}  # component label -> its links (node ids)
        self._edges = EdgeStore()  # component label -> its Dice edges
        self.components_solved = 0
        self.records_solved = 0

    @property
    def agencies(self) -> tuple[str, ...]:
        """Agency names in canonical order (first appearance); indices refer to it."""
        return tuple(self._names)

    @property
    def n_active(self) -> int:
        """Records added and not withdrawn."""
        return sum(self._active_rows)

    def add(
        self, agency: str, keys: np.ndarray, matrix: BitMatrix, identifiers: np.ndarray
    ) -> RegionUpdate:
        """Add one agency's batch: ``keys`` int (n,), strictly increasing and above every key
        added before; ``matrix`` the n filters; ``identifiers`` uint64 (n, n_identifiers)."""
        if not isinstance(agency, str) or not agency:
            raise CoreError(f"agency must be a non-empty str, got {agency!r}")
        keys, ids = self._checked(keys, matrix, identifiers)
        if keys.size == 0:
            return self._solve(keys, keys, keys)
        g = self._agency_index(agency)
        nodes, id_u, id_v, touched = self._register(np.full(keys.size, g), keys, matrix, ids)
        rows = self._nodes.column("row")[nodes]
        u, v, common = self._dice_edges(g, slice(int(rows[0]), int(rows[-1]) + 1))
        self._join(np.concatenate([u, id_u]), np.concatenate([v, id_v]))
        self._edges.add(self._partition.labels(u), u, v, common)
        update = self._solve(np.concatenate([nodes, touched]), np.zeros(0, np.int64), nodes)
        key = self._nodes.column("key")
        return dataclasses.replace(update, edges=(key[u], key[v], common.astype(np.int32)))

    def withdraw(self, keys: np.ndarray) -> RegionUpdate:
        """Withdraw active records by key (int (w,), distinct); their components are solved
        again without them."""
        nodes = self._nodes_of(keys, active_only=True)
        if len(np.unique(nodes)) != len(nodes):
            raise CoreError("withdraw got duplicate keys")
        self._nodes.column("active")[nodes] = False
        agency, ids = self._nodes.column("agency"), self._nodes.column("ids")
        joins, seeds = [], [nodes]
        for g in np.unique(agency[nodes]).tolist():
            mine = nodes[agency[nodes] == g]
            *edge, touched = self._shared.remove(g, mine, ids[mine], self._nodes.column("cleared"))
            joins.append(edge)
            seeds.append(touched)
            self._active_rows[g] -= mine.size
        for u, v in joins:
            self._join(u, v)
        update = self._solve(
            np.concatenate(seeds), np.sort(self._nodes.column("key")[nodes]), np.zeros(0, np.int64)
        )
        for g in np.unique(agency[nodes]).tolist():
            self._maybe_compact(g)
        return update

    def links(self) -> StandingLinks:
        """Every current link, sorted by (key_a, key_b)."""
        return merged_links(list(self._links.values()), self._nodes.column("key"))

    def agency_of(self, keys: np.ndarray) -> np.ndarray:
        """int64, shape like ``keys`` (1-D): the agency index of each key ever added."""
        return self._nodes.column("agency")[self._nodes_of(keys, active_only=False)]

    def component_labels(self, keys: np.ndarray) -> np.ndarray:
        """int64, shape like ``keys`` (active, 1-D): equal for keys in one component; opaque
        (a key of the component), kept to hand back to ``restore``."""
        nodes = self._nodes_of(keys, active_only=True)
        return self._nodes.column("label")[self._partition.labels(nodes)]

    def restore(
        self,
        agencies: Sequence[str],
        keys: np.ndarray,
        matrix: BitMatrix,
        identifiers: np.ndarray,
        labels: np.ndarray,
        links: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        agency_order: Sequence[str] = (),
        edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Load saved state into an empty index without solving: the active records in key
        order (``agencies`` one name per record), their ``component_labels``, the arrays of
        ``links()`` (key_a, key_b, decision, score) and the saved ``agencies`` property as
        ``agency_order``. Without it (or for names missing from it) agencies are ordered by
        first appearance among the records, which differs from the original order when an
        agency's first records were withdrawn (that order matters only for pairs exactly at a
        threshold: module docstring). ``edges``: every ``RegionUpdate.edges`` so far (withdrawn
        records' edges may be among them); without them each restored component compares its
        records again the first time it changes."""
        if self._nodes.n:
            raise CoreError("restore needs an empty index")
        keys, ids = self._checked(keys, matrix, identifiers)
        labels = check_saved_state([*agencies, *agency_order], keys, labels, links, len(agencies))
        for name in agency_order:
            self._agency_index(name)
        codes = np.array([self._agency_index(a) for a in agencies], np.int64)
        nodes, id_u, id_v, _ = self._register(codes, keys, matrix, ids)
        _, group = np.unique(labels, return_inverse=True)
        first = np.full(group.max(initial=-1) + 1, nodes.size, np.int64)
        np.minimum.at(first, group, np.arange(nodes.size))
        self._partition.union(nodes[first[group]], nodes)
        # the saved label values stay: the store keeps a label per record and rewrites only
        # the records whose label changes
        roots = self._partition.labels(nodes[first])
        self._nodes.column("label")[roots] = labels[first]
        if edges is None:
            self._edges.mark_unknown(self._partition.labels(nodes))
            astray = np.zeros(0, np.int64)
        else:
            astray = self._restore_edges(*edges)
        key_a, key_b, decision, score = links
        a, b = self._nodes_of(key_a, True), self._nodes_of(key_b, True)
        self._store(StandingLinks(a, b, np.asarray(decision, np.int8), np.asarray(score, float)))
        if self._join(id_u, id_v) or astray.size:  # labels that miss a join: solve
            self._solve(np.concatenate([id_u, astray]), np.zeros(0, np.int64), astray[:0])
        self._partition.take_moved()  # restored labels are the saved ones: nothing to report

    def _restore_edges(
        self, key_u: np.ndarray, key_v: np.ndarray, common: np.ndarray
    ) -> np.ndarray:
        """File saved edges between restored records; returns the nodes of edges that joined
        two saved components (which are then solved again)."""
        known = self._nodes.column("key")
        at_u = np.minimum(np.searchsorted(known, key_u), max(known.size - 1, 0))
        at_v = np.minimum(np.searchsorted(known, key_v), max(known.size - 1, 0))
        alive = (known[at_u] == key_u) & (known[at_v] == key_v) if known.size else at_u < 0
        u, v = at_u[alive].astype(np.int64), at_v[alive].astype(np.int64)
        label_u, label_v = self._partition.labels(u), self._partition.labels(v)
        astray = label_u != label_v  # none in a consistent store: edges lie in components
        self._partition.union(u[astray], v[astray])
        self._edges.add(self._partition.labels(u), u, v, np.asarray(common)[alive])
        return u[astray]

    def _register(
        self, codes: np.ndarray, keys: np.ndarray, matrix: BitMatrix, ids: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """Append records (agency index of each, key order) to the buffers; returns their node
        ids and the identifier joins and touched nodes (``SharedIdentifiers.add``)."""
        nodes = np.arange(self._nodes.n, self._nodes.n + keys.size, dtype=np.int64)
        row = np.zeros(keys.size, np.int64)
        present = np.unique(codes).tolist()
        for g in present:
            mine = np.flatnonzero(codes == g)
            rows = self._rows[g].append(
                words=matrix.words[mine], popcounts=matrix.popcounts[mine], node=nodes[mine]
            )
            row[mine] = np.arange(rows.start, rows.stop)
            self._active_rows[g] += mine.size
        k = self.n_identifiers
        self._nodes.append(
            key=keys,
            label=keys,
            agency=codes.astype(np.int64),
            row=row,
            active=np.ones(keys.size, np.bool_),
            ids=ids,
            cleared=np.zeros((keys.size, k), np.bool_),
        )
        self._partition.add(keys.size)
        empty = np.zeros(0, np.int64)
        found = [(empty, empty, empty)] + [
            self._shared.add(g, nodes[codes == g], ids[codes == g], self._nodes.column("cleared"))
            for g in present
        ]
        return (nodes, *(np.concatenate([f[i] for f in found]) for i in range(3)))

    # -- validation -------------------------------------------------------------------------

    def _checked(
        self, keys: np.ndarray, matrix: BitMatrix, identifiers: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        last = self._nodes.column("key")[-1:]
        last_key = int(last[0]) if last.size else None
        return checked_records(keys, matrix, identifiers, self.n_bits, self.n_identifiers, last_key)

    def _nodes_of(self, keys: np.ndarray, active_only: bool) -> np.ndarray:
        arr = as_keys(keys)
        if arr.size == 0:
            return arr
        known = self._nodes.column("key")
        nodes = np.minimum(np.searchsorted(known, arr), max(known.size - 1, 0))
        missing = known.size == 0 or known[nodes] != arr
        if np.any(missing):
            bad = arr[np.broadcast_to(missing, arr.shape)]
            raise CoreError(f"unknown keys: {bad[:5].tolist()}")
        if active_only and not self._nodes.column("active")[nodes].all():
            bad = arr[~self._nodes.column("active")[nodes]]
            raise CoreError(f"keys already withdrawn: {bad[:5].tolist()}")
        return nodes.astype(np.int64)

    def _agency_index(self, agency: str) -> int:
        if agency not in self._names:
            self._names.append(agency)
            self._rows.append(
                Columns(
                    {
                        "words": ((self.n_bits // 64,), np.uint64),
                        "popcounts": ((), np.int64),
                        "node": ((), np.int64),
                    }
                )
            )
            self._active_rows.append(0)
        return self._names.index(agency)

    # -- the candidate graph ----------------------------------------------------------------

    def _matrix(self, g: int, rows: slice) -> BitMatrix:
        """A read-only view of agency ``g``'s rows (withdrawn ones included)."""
        words = self._rows[g].column("words")[rows]
        popcounts = self._rows[g].column("popcounts")[rows]
        words.flags.writeable = False
        popcounts.flags.writeable = False
        return BitMatrix(words=words, popcounts=popcounts, n_bits=self.n_bits)

    def _dice_edges(self, g: int, new_rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dice edges (u, v, common bits), node ids, from the new rows of agency ``g`` to every
        active record (the new ones included)."""
        new = self._matrix(g, new_rows)
        new_nodes = self._rows[g].column("node")[new_rows]
        active = self._nodes.column("active")
        found = [(np.zeros(0, np.int64),) * 3]
        for h, rows in enumerate(self._rows):
            t = self.rule.duplicate if h == g else self.rule.possible
            other = self._matrix(h, slice(0, rows.n))
            left, right = similar_pairs(new, other, t, self._threads)
            keep = active[rows.column("node")[right]]
            left, right = left[keep], right[keep]
            common = np.bitwise_count(new.words[left] & other.words[right]).sum(1, np.int64)
            found.append((new_nodes[left], rows.column("node")[right], common))
        u, v, common = (np.concatenate([f[i] for f in found]) for i in range(3))
        return u, v, common

    def _region_edges(self, region: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every Dice edge inside ``region`` (node ids, ascending), compared afresh: for
        components whose edges the index does not hold (restored ones)."""
        agency = self._nodes.column("agency")[region]
        groups = [(g, region[agency == g]) for g in np.unique(agency).tolist()]
        found = [(np.zeros(0, np.int64),) * 3]
        for i, (g, left_nodes) in enumerate(groups):
            left_m = self._records(g, left_nodes).matrix
            for h, right_nodes in groups[i:]:
                t = self.rule.duplicate if h == g else self.rule.possible
                right_m = self._records(h, right_nodes).matrix
                left, right = similar_pairs(left_m, right_m, t, self._threads)
                common = np.bitwise_count(left_m.words[left] & right_m.words[right]).sum(
                    1, np.int64
                )
                found.append((left_nodes[left], right_nodes[right], common))
        u, v, common = (np.concatenate([f[i] for f in found]) for i in range(3))
        return u, v, common

    def _find_unknown_edges(self, labels: list[int]) -> None:
        """Compare afresh inside each of ``labels`` whose edges the index does not hold, one
        component at a time (before it merges into a bigger one, which is then not compared
        again)."""
        active = self._nodes.column("active")
        for label in labels:
            if self._edges.known([label]):
                continue
            self._edges.forget(label)
            members = self._partition.members(label)
            alive = np.sort(members[active[members]])
            u, v, common = self._region_edges(alive)
            self._edges.add(np.full(u.size, label, np.int64), u, v, common)

    def _join(self, u: np.ndarray, v: np.ndarray) -> bool:
        """Merge the components of the pairs (u[i], v[i]); True if any merged."""
        lu, lv = self._partition.labels(u), self._partition.labels(v)
        differ = lu != lv
        self._find_unknown_edges(np.unique(np.concatenate([lu[differ], lv[differ]])).tolist())
        merges = self._partition.union(u, v)
        for gone, kept in merges:  # kept until the merged component is solved, to compare
            moved = self._links.pop(gone, None)
            if moved is not None:
                self._links[kept] = merged_links([self._links.get(kept, no_links()), moved])
        self._edges.merged(merges)
        return bool(merges)

    def _maybe_compact(self, g: int) -> None:
        rows = self._rows[g]
        if rows.n < COMPACT_MIN_ROWS or 2 * self._active_rows[g] >= rows.n:
            return
        alive = self._nodes.column("active")[rows.column("node")]
        rows.keep(alive)
        self._nodes.column("row")[rows.column("node")] = np.arange(rows.n, dtype=np.int64)

    # -- solving regions --------------------------------------------------------------------

    def _solve(self, seeds: np.ndarray, removed: np.ndarray, added: np.ndarray) -> RegionUpdate:
        """Solve again every component holding a seed node (one offline call on their union,
        equal to one per component); store and return their links. ``added``: the nodes this
        call added."""
        labels = np.unique(self._partition.labels(seeds)).tolist()
        active = self._nodes.column("active")
        self._find_unknown_edges(labels)
        parts = [np.zeros(0, np.int64)]
        edges: list[tuple[np.ndarray, ...]] = [(np.zeros(0, np.int64),) * 3]
        before = [no_links()]
        for label in labels:
            before.append(self._links.pop(label, no_links()))
            members = self._partition.members(label)
            alive = members[active[members]]
            self._partition.restrict(label, alive)
            parts.append(alive)
            if alive.size:
                edges.append(self._edges.take(label, active))
            else:
                self._edges.forget(label)
        region = np.sort(np.concatenate(parts))
        joined = tuple(np.concatenate(column) for column in zip(*edges, strict=True))
        found = self._link_region(region, joined)
        self._store(found)
        self.components_solved += len(labels)
        self.records_solved += region.size
        key = self._nodes.column("key")
        links = StandingLinks(key[found.key_a], key[found.key_b], found.decision, found.score)
        changed = np.union1d(changed_ends(merged_links(before), found), added)
        relabelled = np.union1d(self._partition.take_moved(), added)
        return RegionUpdate(
            key[region],
            self._nodes.column("agency")[region],
            removed,
            links,
            len(labels),
            key[changed[self._nodes.column("active")[changed]]],
            key[relabelled[self._nodes.column("active")[relabelled]]],
        )

    def _store(self, found: StandingLinks) -> None:
        """File node-level links under their component labels."""
        if not len(found):
            return
        labels = self._partition.labels(found.key_a)
        order = np.argsort(labels, kind="stable")
        starts = np.flatnonzero(np.diff(labels[order])) + 1
        for part in np.split(order, starts):
            self._links[int(labels[part[0]])] = StandingLinks(
                found.key_a[part], found.key_b[part], found.decision[part], found.score[part]
            )

    def _link_region(self, region: np.ndarray, edges: tuple[np.ndarray, ...]) -> StandingLinks:
        """``link_agencies`` on the region's records (node ids, ascending), Dice pairs read off
        ``edges`` (u, v, common); node-level links sorted by (node_a, node_b), node_a < node_b."""
        agency = self._nodes.column("agency")[region]
        present = np.unique(agency).tolist()
        if len(present) < 2:
            return no_links()
        groups = [region[agency == g] for g in present]
        records = [self._records(g, nodes) for g, nodes in zip(present, groups, strict=True)]
        threads = 1 if region.size < SINGLE_THREAD_RECORDS else self._threads
        return region_links(records, groups, self.rule, threads, edges)  # type: ignore[arg-type]

    def _records(self, g: int, nodes: np.ndarray) -> AgencyRecords:
        """Agency ``g``'s records ``nodes`` (in order), identifiers already cleared."""
        rows = self._nodes.column("row")[nodes]
        words = self._rows[g].column("words")[rows]
        popcounts = self._rows[g].column("popcounts")[rows]
        words.flags.writeable = False
        popcounts.flags.writeable = False
        ids = self._nodes.column("ids")[nodes]
        ids = np.where(self._nodes.column("cleared")[nodes], np.uint64(0), ids)
        return AgencyRecords(self._names[g], BitMatrix(words, popcounts, self.n_bits), ids)
