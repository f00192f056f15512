"""The standing index against offline linking of everything at once."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage_service.core import (
    MATCH,
    POSSIBLE,
    BitLengthError,
    CoreError,
    DecisionRule,
    RegionUpdate,
    StandingIndex,
    StandingLinks,
    from_packed,
)
from linkage_service.core._similar_pairs import DIRECT_ROWS
from linkage_service.core.entities import MAX_SHARED_IDENTIFIER
from linkage_service.core.linking import AgencyRecords, link_agencies

pytestmark = pytest.mark.unit

RULE = DecisionRule(match=0.8, possible=0.65, identifier_floor=0.6, duplicate=0.9)
N_BITS = 256
PLACEHOLDER = 999_999  # an identifier value some agencies put on many records


@dataclass
class Record:
    agency: str
    packed: np.ndarray  # uint8 (N_BITS / 8,)
    ids: np.ndarray  # uint64 (2,)


@dataclass
class Replay:
    """Everything submitted so far, and the links the caller keeps from the updates alone."""

    index: StandingIndex
    records: dict[int, Record] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)
    order: list[str] = field(default_factory=list)
    kept: dict[tuple[int, int], tuple[int, float]] = field(default_factory=dict)
    labels: dict[int, int] | None = field(default_factory=dict)  # label per active key
    # the labels as the store keeps them: written only for the keys an update relabelled
    stored_labels: dict[int, int] = field(default_factory=dict)
    saved_edges: list[tuple[np.ndarray, ...]] = field(default_factory=list)  # as the store

    def add(self, agency: str, keys: list[int], recs: list[Record]) -> RegionUpdate:
        if agency not in self.order:
            self.order.append(agency)
        packed = np.stack([r.packed for r in recs])
        ids = np.stack([r.ids for r in recs]).astype(np.uint64)
        update = self.index.add(agency, np.array(keys), from_packed(packed, N_BITS), ids)
        self.records.update(zip(keys, recs, strict=True))
        self.active.update(keys)
        self._apply(update, tuple(keys))
        self.saved_edges.append(update.edges)
        assert set(keys) <= set(update.keys.tolist()) and update.removed.size == 0
        return update

    def withdraw(self, keys: list[int]) -> RegionUpdate:
        update = self.index.withdraw(np.array(keys, dtype=np.int64))
        self.active.difference_update(keys)
        self._apply(update)
        assert update.removed.tolist() == sorted(keys)
        return update

    def _apply(self, update: RegionUpdate, added: tuple[int, ...] = ()) -> None:
        touched = set(update.keys.tolist()) | set(update.removed.tolist())
        before = dict(self.kept)
        self.kept = {p: v for p, v in self.kept.items() if not touched & set(p)}
        for a, b, d, s in zip(*_columns(update.links), strict=True):
            assert a in touched and b in touched
            self.kept[(a, b)] = (d, s)
        # what the update says changed is exactly what did
        differ = set(before.items()) ^ set(self.kept.items())
        ends = {k for (pair, _) in differ for k in pair}
        assert update.changed.tolist() == sorted((ends | set(added)) & self.active)
        labels = dict(
            zip(
                sorted(self.active),
                self.index.component_labels(np.array(sorted(self.active), np.int64)).tolist(),
                strict=True,
            )
        )
        for k in update.removed.tolist():
            self.stored_labels.pop(k, None)
        relabelled = update.relabelled
        self.stored_labels.update(
            zip(relabelled.tolist(), self.index.component_labels(relabelled).tolist(), strict=True)
        )
        if self.labels is not None:  # None: just restored, label values not comparable
            moved = {k for k in labels if k in self.labels and labels[k] != self.labels[k]}
            assert update.relabelled.tolist() == sorted(moved | set(added))
        self.labels = labels
        region = update.keys.tolist()
        assert region == sorted(region) and set(region) <= self.active
        agencies = [self.index.agencies[g] for g in update.agency.tolist()]
        assert agencies == [self.records[k].agency for k in region]

    def check(self) -> StandingLinks:
        """The index's links equal offline linking of the active records, and the updates."""
        got = self.index.links()
        expected = offline_links(self.records, self.active, self.order)
        for name in ("key_a", "key_b", "decision"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), name)
        assert got.score.view(np.uint64).tolist() == expected.score.view(np.uint64).tolist()
        assert got.key_a.dtype == np.int64 and got.decision.dtype == np.int8
        from_updates = sorted((a, b, d, s) for (a, b), (d, s) in self.kept.items())
        assert from_updates == list(zip(*_columns(got), strict=True))
        assert self.index.n_active == len(self.active)
        return got


def _columns(links: StandingLinks) -> tuple[list, ...]:
    return tuple(getattr(links, n).tolist() for n in ("key_a", "key_b", "decision", "score"))


def offline_links(records: dict[int, Record], active: set[int], order: list[str]) -> StandingLinks:
    """``link_agencies`` on the active records: agencies by first appearance, keys ascending."""
    by_agency: dict[str, list[int]] = {}
    for key in sorted(active):
        by_agency.setdefault(records[key].agency, []).append(key)
    names = [name for name in order if name in by_agency]
    out: list[tuple[int, int, int, float]] = []
    if len(names) >= 2:
        agencies = [
            AgencyRecords(
                name,
                from_packed(np.stack([records[k].packed for k in by_agency[name]]), N_BITS),
                np.stack([records[k].ids for k in by_agency[name]]).astype(np.uint64),
            )
            for name in names
        ]
        for p in link_agencies(agencies, RULE):
            keys_a, keys_b = by_agency[names[p.a]], by_agency[names[p.b]]
            for i, j, d, s in zip(p.left, p.right, p.decisions, p.scores, strict=True):
                a, b = keys_a[int(i)], keys_b[int(j)]
                out.append((min(a, b), max(a, b), int(d), float(s)))
    out.sort()
    cols = list(zip(*out, strict=True)) or [(), (), (), ()]
    return StandingLinks(
        np.array(cols[0], np.int64),
        np.array(cols[1], np.int64),
        np.array(cols[2], np.int8),
        np.array(cols[3], np.float64),
    )


def population(rng: np.random.Generator, n_agencies: int, n_people: int) -> list[Record]:
    """Agencies' noisy records of shared people: near-duplicates across agencies, twins (equal
    bits, different identifiers), duplicates inside an agency, shared and mistyped identifiers,
    and a placeholder identifier some agencies put on many records."""
    people = rng.random((n_people, N_BITS)) < 0.3
    twin = np.flatnonzero(rng.random(n_people) < 0.15)
    people[twin[twin > 0]] = people[twin[twin > 0] - 1]
    nhs = rng.permutation(n_people).astype(np.uint64) * 7919 + 1
    records = []
    for g in range(n_agencies):
        placeholder_rate = rng.choice([0.0, 0.2, 0.45])
        for p in np.flatnonzero(rng.random(n_people) < 0.5):
            for _ in range(1 + int(rng.random() < 0.15)):  # some held twice
                noise = rng.choice([0.0, 0.02, rng.uniform(0.0, 0.2)])
                bits = people[p] ^ (rng.random(N_BITS) < noise)
                ids = np.zeros(2, np.uint64)
                draw = rng.random()
                if draw < placeholder_rate:
                    ids[0] = PLACEHOLDER
                elif draw < 0.75:
                    ids[0] = nhs[p] if rng.random() > 0.05 else nhs[(p + 1) % n_people]
                if rng.random() < 0.3:
                    ids[1] = 10_000 + p
                records.append(Record(f"agency{g}", np.packbits(bits), ids))
    return records


def batches(rng: np.random.Generator, records: list[Record], max_batch: int) -> list[list[Record]]:
    """Each agency's records split into random batches, the batches interleaved at random."""
    out = []
    for name in sorted({r.agency for r in records}):
        mine = [r for r in records if r.agency == name]
        order = rng.permutation(len(mine))
        cuts = np.cumsum(rng.integers(1, max_batch + 1, size=len(mine)))
        cuts = cuts[cuts < len(mine)]
        out.extend([mine[i] for i in part] for part in np.split(order, cuts))
    return [out[i] for i in rng.permutation(len(out))]


def keys_for(rng: np.random.Generator, start: int, count: int) -> list[int]:
    return (start + np.cumsum(rng.integers(1, 4, size=count))).tolist()


def new_index() -> StandingIndex:
    return StandingIndex(N_BITS, 2, RULE, threads=1)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_agencies=st.integers(2, 4),
    n_people=st.integers(5, 30),
    max_batch=st.sampled_from([1, 3, 10, 40]),
)
def test_batches_in_any_order_give_the_offline_links(seed, n_agencies, n_people, max_batch):
    rng = np.random.default_rng(seed)
    replay = Replay(new_index())
    key = int(rng.integers(-1000, 1000))
    for batch in batches(rng, population(rng, n_agencies, n_people), max_batch):
        keys = keys_for(rng, key, len(batch))
        key = keys[-1]
        replay.add(batch[0].agency, keys, batch)
    replay.check()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_agencies=st.integers(2, 4),
    n_people=st.integers(5, 25),
    max_batch=st.sampled_from([1, 4, 12]),
)
def test_adds_and_withdrawals_stay_equal_to_offline(seed, n_agencies, n_people, max_batch):
    """Checked after every call, with withdrawals between the batches."""
    rng = np.random.default_rng(seed)
    replay = Replay(new_index())
    key = 0
    for batch in batches(rng, population(rng, n_agencies, n_people), max_batch):
        keys = keys_for(rng, key, len(batch))
        key = keys[-1]
        replay.add(batch[0].agency, keys, batch)
        replay.check()
        if replay.active and rng.random() < 0.4:
            pool = sorted(replay.active)
            count = int(rng.integers(1, min(4, len(pool)) + 1))
            replay.withdraw(rng.choice(pool, count, replace=False).tolist())
            replay.check()
    replay.withdraw(sorted(replay.active)[::2])
    replay.check()


def test_frequent_identifier_crossing_the_limit_both_ways():
    """A value held by more than the limit of one agency's records is cleared everywhere in
    that agency, including records linked before it became frequent and records in other
    components, and comes back when withdrawals bring it under the limit."""
    rng = np.random.default_rng(5)

    def holder(agency: str) -> Record:  # unrelated filters: only the identifier links them
        return Record(agency, np.packbits(rng.random(N_BITS) < 0.3), np.array([7, 0]))

    replay = Replay(new_index())
    replay.add("b", [0], [holder("b")])
    for key in range(1, MAX_SHARED_IDENTIFIER + 1):
        replay.add("a", [key], [holder("a")])
        assert replay.check().decision.tolist() == [POSSIBLE]  # agreeing identifier, low Dice
    extra = MAX_SHARED_IDENTIFIER + 1
    replay.add("a", [extra], [holder("a")])  # one holder too many: cleared in "a"
    replay.add("a", [extra + 1], [holder("a")])
    assert len(replay.check()) == 0
    replay.withdraw([extra])
    assert len(replay.check()) == 0
    replay.withdraw([extra + 1])  # back at the limit, in a component of its own
    assert replay.check().decision.tolist() == [POSSIBLE]
    replay.add("a", [extra + 2], [holder("a")])
    assert len(replay.check()) == 0
    replay.withdraw([1])
    assert replay.check().decision.tolist() == [POSSIBLE]


def _bits(*groups: range) -> np.ndarray:
    bits = np.zeros(N_BITS, bool)
    for group in groups:
        bits[list(group)] = True
    return np.packbits(bits)


def test_a_duplicate_inside_one_agency_joins_components():
    """a1 and a2 are one child held twice (Dice 0.95); b1 is close to a1 only (0.71 vs 0.62),
    b2 to a2 only (0.67 vs 0.64). One-to-one between entities keeps only a1-b1, which needs a1
    and a2 in one sub-problem although no cross-agency edge joins them."""
    none = np.zeros(2, np.uint64)
    replay = Replay(new_index())
    replay.add("b", [1], [Record("b", _bits(range(0, 55)), none)])  # R + T
    replay.add("b", [2], [Record("b", _bits(range(10, 100), range(100, 190)), none)])  # a2 + M
    replay.add("a", [3], [Record("a", _bits(range(0, 100)), none)])  # a1 = S
    assert replay.check().key_b.tolist() == [3]
    replay.add("a", [4], [Record("a", _bits(range(10, 100)), none)])  # a2 = S - R
    links = replay.check()
    assert (links.key_a.tolist(), links.key_b.tolist()) == ([1], [3])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_agencies=st.integers(2, 4))
def test_restore_then_continue_equals_never_stopping(seed, n_agencies):
    """An index restored from the active records, ``component_labels`` and ``links()`` holds
    the same links and goes on exactly like the original."""
    rng = np.random.default_rng(seed)
    todo = batches(rng, population(rng, n_agencies, 20), 6)
    replay, key = Replay(new_index()), 0
    for step, batch in enumerate(todo):
        keys = keys_for(rng, key, len(batch))
        key = keys[-1]
        replay.add(batch[0].agency, keys, batch)
        if step % 3 == 2:
            replay.withdraw(rng.choice(sorted(replay.active), 1).tolist())
        if step in (len(todo) // 3, 2 * len(todo) // 3):  # restarted twice
            with_edges = step == len(todo) // 3
            replay.index, replay.labels = _restored(replay, with_edges), None
            replay.check()
    replay.check()


def test_restore_without_the_saved_order_orders_agencies_by_first_record():
    none = np.zeros(2, np.uint64)
    records = [Record(a, _bits(range(0, 20)), none) for a in ("b", "a", "b")]
    index = new_index()
    index.restore(
        [r.agency for r in records],
        np.array([3, 4, 5]),
        from_packed(np.stack([r.packed for r in records]), N_BITS),
        np.zeros((3, 2), np.uint64),
        np.array([3, 3, 3]),
        _no_saved_links(),
    )
    assert index.agencies == ("b", "a") and index.agency_of(np.array([4])).tolist() == [1]
    assert len(index.links()) == 0  # restored as saved, not solved


def _restored(replay: Replay, with_edges: bool = True) -> StandingIndex:
    """A new index restored from what a store keeps; ``with_edges=False``: a store from before
    edges were kept (the index compares each restored component again when it first changes)."""
    keys = np.array(sorted(replay.active), np.int64)
    records = [replay.records[k] for k in keys.tolist()]
    labels = np.array([replay.stored_labels[k] for k in keys.tolist()], np.int64)
    # what a store kept from the updates is the index's partition, label for label
    assert labels.tolist() == replay.index.component_labels(keys).tolist()
    saved = replay.index.links()
    index = new_index()
    index.restore(
        [r.agency for r in records],
        keys,
        from_packed(np.stack([r.packed for r in records]), N_BITS),
        np.stack([r.ids for r in records]).astype(np.uint64),
        labels,
        (saved.key_a, saved.key_b, saved.decision, saved.score),
        agency_order=replay.index.agencies,
        edges=tuple(np.concatenate(c) for c in zip(*replay.saved_edges, strict=True))
        if with_edges and replay.saved_edges
        else None,
    )
    assert index.agencies == replay.index.agencies
    # the same label values: the store rewrites only the labels an update reports as changed
    assert index.component_labels(keys).tolist() == labels.tolist()
    return index


@pytest.mark.parametrize("padding", [0, DIRECT_ROWS + 1])
def test_a_pair_exactly_at_the_possible_threshold_is_found(padding):
    """Dice exactly 0.65 (26 / 40), for a single new record and for a batch big enough for the
    Dice kernel; the padding records share no bit with the pair."""
    rng = np.random.default_rng(2)
    none = np.zeros(2, np.uint64)
    replay = Replay(new_index())
    replay.add("b", [0], [Record("b", _bits(range(0, 13), range(20, 27)), none)])
    pads = [
        Record("a", _bits(range(100, 110), [int(rng.integers(110, N_BITS))]), none)
        for _ in range(padding)
    ]
    replay.add("a", list(range(1, padding + 2)), [Record("a", _bits(range(0, 20)), none), *pads])
    links = replay.check()
    assert links.key_b.tolist() == [1] and links.score.tolist() == [0.65]
    assert links.decision.tolist() == [POSSIBLE]


@pytest.mark.parametrize("small_first", [True, False])
def test_sub_problems_keep_the_agencies_canonical_order(small_first):
    """Dice exactly 0.65 between 13 bits and 27 bits that contain them: anonlink's pre-filter,
    bounded by the left record's popcount (13 -> 13 < 14), drops the pair when the smaller
    record's agency comes first, and keeps it the other way round; the index agrees with offline
    linking in both orders."""
    none = np.zeros(2, np.uint64)
    small, large = _bits(range(0, 13)), _bits(range(0, 27))
    replay = Replay(new_index())
    if small_first:
        replay.add("x", [1], [Record("x", small, none)])
        replay.add("y", [2], [Record("y", large, none)])
    else:
        replay.add("y", [1], [Record("y", large, none)])
        replay.add("x", [2], [Record("x", small, none)])
    assert replay.check().decision.tolist() == ([] if small_first else [POSSIBLE])


def test_population_encoded_by_the_client(tmp_path):
    """Part of the synthetic population, encoded as agencies encode it, in random batches, with
    most records withdrawn half way (which compacts the agencies' buffers) and more added after."""
    from benchmarks.population import generate_population, write_agency_csvs
    from clients.encoding.encode_file import encode_csv
    from clients.encoding.secret import Secret
    from linkage_service.cli import rule_from_schema
    from linkage_service.wire.schema import load_schema

    schema = load_schema("children-v1")
    paths = write_agency_csvs(generate_population(300, seed=7), tmp_path)
    encoded = [encode_csv(p, schema, Secret(bytes(range(32))), a) for a, p in paths.items()]
    rule, n_bits = rule_from_schema(schema), encoded[0].filter_bits
    rng = np.random.default_rng(1)
    index = StandingIndex(n_bits, encoded[0].identifiers.shape[1], rule)
    chunks = [
        (b, part)
        for b in encoded
        for part in np.array_split(np.arange(len(b.record_ids)), rng.integers(2, 12))
    ]
    submitted: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    drop: set[int] = set()
    for step, i in enumerate(rng.permutation(len(chunks)).tolist()):
        batch, part = chunks[i]
        start = submitted[-1][1][-1] + 1 if submitted else 0
        keys = np.arange(start, start + part.size)
        bits, ids = batch.bits[part], batch.identifiers[part]
        index.add(batch.agency, keys, from_packed(bits, n_bits), ids)
        submitted.append((batch.agency, keys, bits, ids))
        if step == 2 * len(chunks) // 3:
            assert np.count_nonzero(index.links().decision == MATCH) > 100
            _assert_offline(index.links(), submitted, rule, n_bits, drop)
            drop = set(rng.choice(keys[-1] + 1, (keys[-1] + 1) * 3 // 5, replace=False).tolist())
            index.withdraw(np.array(sorted(drop)))
            _assert_offline(index.links(), submitted, rule, n_bits, drop)
    _assert_offline(index.links(), submitted, rule, n_bits, drop)


def _assert_offline(got, submitted, rule, n_bits, drop):
    order: list[str] = []
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for agency, keys, bits, ids in submitted:
        order += [agency] if agency not in order else []
        keep = ~np.isin(keys, list(drop))
        parts.setdefault(agency, []).append((keys[keep], bits[keep], ids[keep]))
    keys = {a: np.concatenate([p[0] for p in ps]) for a, ps in parts.items()}
    agencies = [
        AgencyRecords(
            a,
            from_packed(np.concatenate([p[1] for p in parts[a]]), n_bits),
            np.concatenate([p[2] for p in parts[a]]),
        )
        for a in order
    ]
    expected = set()
    for p in link_agencies(agencies, rule):
        ka, kb = keys[order[p.a]][p.left], keys[order[p.b]][p.right]
        for a, b, d, s in zip(ka, kb, p.decisions, p.scores, strict=True):
            expected.add((min(a, b), max(a, b), int(d), float(s)))
    assert sorted(expected) == list(zip(*_columns(got), strict=True))


def test_single_record_and_a_lone_agency_have_no_links():
    replay = Replay(new_index())
    rng = np.random.default_rng(0)
    bits = rng.random(N_BITS) < 0.3
    update = replay.add("a", [10], [Record("a", np.packbits(bits), np.array([1, 0]))])
    assert update.keys.tolist() == [10] and len(update.links) == 0 and update.components == 1
    twin = Record("a", np.packbits(bits), np.array([1, 0]))  # a duplicate, same agency
    update = replay.add("a", [11], [twin])
    assert update.keys.tolist() == [10, 11] and update.agency.tolist() == [0, 0]
    assert len(replay.check()) == 0
    update = replay.add("b", [12], [Record("b", np.packbits(bits), np.array([1, 0]))])
    assert update.keys.tolist() == [10, 11, 12]
    assert replay.check().decision.tolist() == [MATCH, MATCH]  # both duplicates link
    assert replay.index.agency_of(np.array([12, 10])).tolist() == [1, 0]


def test_withdraw_everything():
    rng = np.random.default_rng(3)
    replay = Replay(new_index())
    key = 0
    for batch in batches(rng, population(rng, 3, 15), 5):
        keys = keys_for(rng, key, len(batch))
        key = keys[-1]
        replay.add(batch[0].agency, keys, batch)
    assert len(replay.check()) > 0
    update = replay.withdraw(sorted(replay.active))
    assert update.keys.size == 0 and len(update.links) == 0
    assert replay.index.n_active == 0 and len(replay.check()) == 0
    with pytest.raises(CoreError, match="already withdrawn"):
        replay.index.withdraw(np.array([key]))


def test_restoring_nothing_gives_an_empty_index():
    index = new_index()
    empty = np.zeros(0, np.int64)
    index.restore([], empty, _batch(0)[0], np.zeros((0, 2), np.uint64), empty, _no_saved_links())
    assert index.n_active == 0 and len(index.links()) == 0 and index.agencies == ()


def test_an_empty_batch_changes_nothing():
    index = new_index()
    update = index.add(
        "a",
        np.zeros(0, np.int64),
        from_packed(np.zeros((0, 32), np.uint8), 256),
        np.zeros((0, 2), np.uint64),
    )
    assert update.keys.size == 0 and index.agencies == () and len(index.links()) == 0


def _batch(n, n_bits=N_BITS, k=2):
    packed = np.random.default_rng(0).integers(0, 256, (n, n_bits // 8), dtype=np.uint8)
    return from_packed(packed, n_bits), np.zeros((n, k), np.uint64)


def _no_saved_links():
    empty = np.zeros(0, np.int64)
    return (empty, empty, np.zeros(0, np.int8), np.zeros(0, np.float64))


def test_errors_name_the_problem():
    index = new_index()
    with pytest.raises(BitLengthError, match="512 bits but the index holds 256"):
        index.add("a", np.arange(2), *_batch(2, n_bits=512))
    with pytest.raises(CoreError, match=r"shape \(2, 2\)"):
        index.add("a", np.arange(2), _batch(2)[0], np.zeros((2, 3), np.uint64))
    with pytest.raises(CoreError, match="uint64"):
        index.add("a", np.arange(2), _batch(2)[0], np.zeros((2, 2), np.int64))
    with pytest.raises(CoreError, match="2 filters but 3 keys"):
        index.add("a", np.arange(3), *_batch(2))
    with pytest.raises(CoreError, match="key 4 follows 4"):
        index.add("a", np.array([3, 4, 4]), *_batch(3))
    index.add("a", np.array([5, 9]), *_batch(2))
    with pytest.raises(CoreError, match="key 9 is not above the last key added"):
        index.add("b", np.array([9]), *_batch(1))
    with pytest.raises(CoreError, match=r"unknown keys: \[6\]"):
        index.withdraw(np.array([6]))
    with pytest.raises(CoreError, match="duplicate"):
        index.withdraw(np.array([5, 5]))
    with pytest.raises(CoreError, match="restore needs an empty index"):
        index.restore(["a"], np.array([20]), *_batch(1), np.array([20]), _no_saved_links())
    with pytest.raises(CoreError, match="different component labels"):
        new_index().restore(
            ["a", "b"],
            np.array([1, 2]),
            *_batch(2),
            np.array([1, 2]),
            (np.array([1]), np.array([2]), np.array([MATCH], np.int8), np.array([1.0])),
        )
    with pytest.raises(CoreError, match="not among the records"):
        new_index().restore(
            ["a", "b"],
            np.array([1, 2]),
            *_batch(2),
            np.array([1, 1]),
            (np.array([1]), np.array([3]), np.array([MATCH], np.int8), np.array([1.0])),
        )
    with pytest.raises(CoreError, match="non-empty str"):
        new_index().restore(
            ["a"], np.array([1]), *_batch(1), np.array([1]), _no_saved_links(), [""]
        )
    with pytest.raises(BitLengthError):
        StandingIndex(100, 1, RULE)
    with pytest.raises(CoreError, match="n_identifiers"):
        StandingIndex(256, -1, RULE)
    assert index.n_active == 2


def test_solving_a_component_again_compares_no_filters(monkeypatch):
    """Kept Dice edges answer the re-solve: with the all-pairs kernel disabled, a record joining
    a component still gives the offline links. Only a restored component (the store keeps no
    edges) is compared afresh, once."""
    import linkage_service.core.linking as linking

    rng = np.random.default_rng(7)
    replay = Replay(new_index())
    records = population(rng, 3, 30)
    # later arrivals: another agency's exact copies of known records, so each joins a component
    held_back = [
        Record(f"agency{(int(r.agency[-1]) + 1) % 3}", r.packed, r.ids) for r in records[:13:4]
    ]
    key = 0
    for batch in batches(rng, records, 10):
        keys = keys_for(rng, key, len(batch))
        key = keys[-1]
        replay.add(batch[0].agency, keys, batch)
    kernel = linking.dice_candidates

    def refuse(*args, **kwargs):
        raise AssertionError("the re-solve compared filters")

    monkeypatch.setattr(linking, "dice_candidates", refuse)
    for record in held_back[:2]:
        key += 1
        update = replay.add(record.agency, [key], [record])
        assert update.keys.size > 1  # it joined a component, which was solved again
    monkeypatch.setattr(linking, "dice_candidates", kernel)
    replay.check()
    # restored with the saved edges: still nothing compared
    replay.index, replay.labels = _restored(replay), None
    monkeypatch.setattr(linking, "dice_candidates", refuse)
    monkeypatch.setattr(StandingIndex, "_region_edges", refuse)
    key += 1
    replay.add(held_back[2].agency, [key], [held_back[2]])
    replay.withdraw([key])
    monkeypatch.undo()
    replay.check()
    # restored from a store without edges: the component is compared once, then not again
    replay.index, replay.labels = _restored(replay, with_edges=False), None
    key += 1
    replay.add(held_back[3].agency, [key], [held_back[3]])
    monkeypatch.setattr(linking, "dice_candidates", refuse)
    monkeypatch.setattr(StandingIndex, "_region_edges", refuse)
    replay.withdraw([key])
    monkeypatch.undo()
    replay.check()
