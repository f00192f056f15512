"""Greedy one-to-one solving: the numpy rounds against the sequential reference, plus invariants."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage_service.core import solving
from linkage_service.core.errors import CoreError
from linkage_service.core.solving import greedy_one_to_one, greedy_one_to_one_reference

pytestmark = pytest.mark.unit

# The fast path mixes numpy rounds with a sequential tail. Forcing each alone, and a hard round
# cap, makes small examples exercise every hand-over point.
MODES = {
    "default": {},
    "rounds_only": {"SEQUENTIAL_TAIL": 0, "MAX_ROUNDS": 10**9, "MIN_PROGRESS": 0},
    "sequential_only": {"MAX_ROUNDS": 0},
    "round_cap": {"SEQUENTIAL_TAIL": 0, "MAX_ROUNDS": 2, "MIN_PROGRESS": 0},
}


def regime(mode: str):
    # Patching MAX_ROUNDS to itself keeps the call valid when a mode changes nothing.
    return mock.patch.multiple(solving, **{"MAX_ROUNDS": solving.MAX_ROUNDS, **MODES[mode]})


def random_edges(rng, n, n_left, n_right, levels=None):
    """Random candidate edges; ``levels`` distinct weights (None: continuous) force many ties."""
    if levels is None:
        w = rng.random(n)
    else:
        w = rng.integers(0, levels, n) / max(levels, 1)
    return w, rng.integers(0, n_left, n), rng.integers(0, n_right, n)


def rank_key(w, lft, rgt, i):
    return (-w[i], lft[i], rgt[i], i)


# ---------------------------------------------------------------- fast path equals the reference


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("levels", [None, 1, 2, 5])
def test_matches_reference_on_random_edges(mode, levels):
    rng = np.random.default_rng([list(MODES).index(mode), levels or 0])
    for _ in range(40):
        n, n_left, n_right = (int(x) for x in rng.integers([0, 1, 1], [600, 80, 80]))
        w, lft, rgt = random_edges(rng, n, n_left, n_right, levels)
        with regime(mode):
            fast = greedy_one_to_one(w, lft, rgt)
        np.testing.assert_array_equal(fast, greedy_one_to_one_reference(w, lft, rgt))


def test_matches_reference_with_sparse_huge_indices():
    # Indices far beyond the edge count take the renumbering path.
    rng = np.random.default_rng(7)
    w, lft, rgt = random_edges(rng, 3000, 400, 400, levels=3)
    lft = lft * 10**12 + 5
    rgt = rgt.astype(np.uint64) * np.uint64(2**40)
    np.testing.assert_array_equal(
        greedy_one_to_one(w, lft, rgt), greedy_one_to_one_reference(w, lft, rgt)
    )


def test_matches_reference_on_a_larger_graph():
    rng = np.random.default_rng(11)
    w, lft, rgt = random_edges(rng, 20_000, 5_000, 5_000, levels=20)
    np.testing.assert_array_equal(
        greedy_one_to_one(w, lft, rgt), greedy_one_to_one_reference(w, lft, rgt)
    )


@pytest.mark.parametrize("mode", list(MODES))
def test_adversarial_chain(mode):
    # Weights falling along a path: each round accepts one edge, so the hand-over to the
    # sequential tail (for lack of progress or at the round cap) must be exact.
    n = 4 * solving.MAX_ROUNDS + 3 * solving.SEQUENTIAL_TAIL
    lft = np.arange(n) // 2
    rgt = (np.arange(n) + 1) // 2
    w = np.linspace(1.0, 0.5, n)
    with regime(mode):
        fast = greedy_one_to_one(w, lft, rgt)
    np.testing.assert_array_equal(fast, greedy_one_to_one_reference(w, lft, rgt))
    np.testing.assert_array_equal(fast, np.arange(0, n, 2))


# ------------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("fn", [greedy_one_to_one, greedy_one_to_one_reference])
def test_empty_input_gives_empty_int64(fn):
    out = fn(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert out.dtype == np.int64 and out.shape == (0,)
    assert fn([], [], []).dtype == np.int64


@pytest.mark.parametrize("fn", [greedy_one_to_one, greedy_one_to_one_reference])
def test_ties_break_by_smaller_left_then_smaller_right(fn):
    w = np.array([0.9, 0.9, 0.9, 0.9])
    lft = np.array([2, 1, 1, 3])
    rgt = np.array([0, 5, 0, 5])
    # Ranked: (1,0) idx2, (1,5) idx1, (2,0) idx0, (3,5) idx3.
    np.testing.assert_array_equal(fn(w, lft, rgt), [2, 3])


@pytest.mark.parametrize("fn", [greedy_one_to_one, greedy_one_to_one_reference])
def test_higher_weight_wins_and_result_is_in_rank_order(fn):
    w = np.array([0.6, 0.95, 0.7, 0.8])
    lft = np.array([0, 0, 1, 2])
    rgt = np.array([0, 1, 1, 0])
    np.testing.assert_array_equal(fn(w, lft, rgt), [1, 3])


@pytest.mark.parametrize("fn", [greedy_one_to_one, greedy_one_to_one_reference])
def test_exact_duplicate_edges_keep_the_first_by_input_position(fn):
    w = np.array([0.8, 0.8, 0.8])
    lft = np.array([4, 4, 4])
    rgt = np.array([9, 9, 9])
    np.testing.assert_array_equal(fn(w, lft, rgt), [0])


def test_negative_zero_and_integer_weights_are_accepted():
    w = np.array([0.0, -0.0, -1.0, 3])
    lft = np.array([0, 1, 1, 2], dtype=np.uint8)
    rgt = np.array([0, 0, 1, 1], dtype=np.int32)
    np.testing.assert_array_equal(greedy_one_to_one(w, lft, rgt), [3, 0])
    np.testing.assert_array_equal(greedy_one_to_one(w.astype(np.int16), lft, rgt), [3, 0])


def test_inputs_are_not_modified():
    rng = np.random.default_rng(3)
    w, lft, rgt = random_edges(rng, 500, 50, 50, levels=4)
    copies = [a.copy() for a in (w, lft, rgt)]
    greedy_one_to_one(w, lft, rgt)
    for original, copy in zip((w, lft, rgt), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("fn", [greedy_one_to_one, greedy_one_to_one_reference])
@pytest.mark.parametrize(
    ("w", "lft", "rgt", "message"),
    [
        ([0.5, 0.6], [0], [0], "equal lengths"),
        ([0.5], [0, 1], [0], "equal lengths"),
        ([[0.5]], [[0]], [[0]], "1-D"),
        ([0.5], [0.0], [0], "integer"),
        ([0.5], [0], [True], "integer"),
        ([0.5], [-1], [0], "negative"),
        ([0.5], [0], [-3], "negative"),
        ([np.nan], [0], [0], "finite"),
        ([np.inf], [0], [0], "finite"),
        ([1 + 1j], [0], [0], "real"),
        ([0.5], np.array([2**63], dtype=np.uint64), [0], "int64"),
    ],
)
def test_bad_input_raises_core_error(fn, w, lft, rgt, message):
    with pytest.raises(CoreError, match=message):
        fn(np.asarray(w), np.asarray(lft), np.asarray(rgt))


# ------------------------------------------------------------------------ property tests

weights_st = st.one_of(
    st.sampled_from([0.0, 0.5, 0.75, 0.8, 1.0]),
    st.floats(min_value=-2, max_value=2, allow_nan=False, width=32),
)
edges_st = st.lists(st.tuples(weights_st, st.integers(0, 12), st.integers(0, 12)), max_size=120)


def triples(idx, w, lft, rgt):
    return [(w[i], lft[i], rgt[i]) for i in idx.tolist()]


def as_arrays(edges):
    w = np.array([e[0] for e in edges], dtype=np.float64)
    lft = np.array([e[1] for e in edges], dtype=np.int64)
    rgt = np.array([e[2] for e in edges], dtype=np.int64)
    return w, lft, rgt


@settings(max_examples=150, deadline=None)
@given(edges=edges_st, mode=st.sampled_from(list(MODES)))
def test_property_one_link_per_record_and_maximal(edges, mode):
    w, lft, rgt = as_arrays(edges)
    with regime(mode):
        acc = greedy_one_to_one(w, lft, rgt)
    np.testing.assert_array_equal(acc, greedy_one_to_one_reference(w, lft, rgt))
    assert len(set(lft[acc].tolist())) == len(acc) == len(set(rgt[acc].tolist()))
    keys = [rank_key(w, lft, rgt, i) for i in acc.tolist()]
    assert keys == sorted(keys)
    rank_of_holder = {}
    for i in acc.tolist():
        rank_of_holder[("L", int(lft[i]))] = rank_key(w, lft, rgt, i)
        rank_of_holder[("R", int(rgt[i]))] = rank_key(w, lft, rgt, i)
    for i in sorted(set(range(len(w))) - set(acc.tolist())):
        mine = rank_key(w, lft, rgt, i)
        blockers = [rank_of_holder.get(("L", int(lft[i]))), rank_of_holder.get(("R", int(rgt[i])))]
        assert any(b is not None and b < mine for b in blockers), f"edge {i} was wrongly rejected"


@settings(max_examples=150, deadline=None)
@given(edges=edges_st, data=st.data())
def test_property_input_order_does_not_change_the_accepted_set(edges, data):
    w, lft, rgt = as_arrays(edges)
    perm = np.array(data.draw(st.permutations(range(len(w)))), dtype=np.int64)
    before = greedy_one_to_one(w, lft, rgt)
    after = greedy_one_to_one(w[perm], lft[perm], rgt[perm])
    assert triples(before, w, lft, rgt) == triples(after, w[perm], lft[perm], rgt[perm])


@settings(max_examples=150, deadline=None)
@given(edges=edges_st, mode=st.sampled_from(list(MODES)))
def test_property_idempotent(edges, mode):
    w, lft, rgt = as_arrays(edges)
    with regime(mode):
        acc = greedy_one_to_one(w, lft, rgt)
        again = greedy_one_to_one(w[acc], lft[acc], rgt[acc])
    np.testing.assert_array_equal(again, np.arange(len(acc)))


# ------------------------------------------------------------------------- anonlink oracle


def _pairs_of(groups):
    """anonlink's match groups, ((dataset, record), (dataset, record)), as (left, right) pairs."""
    pairs = set()
    for group in groups:
        members = dict(group)  # two datasets: each group is one record of each
        assert len(group) == 2 and set(members) == {0, 1}
        pairs.add((members[0], members[1]))
    return pairs


def _anonlink_pairs(w, lft, rgt):
    """Run anonlink's greedy solver on our edges, given in its candidate format and order."""
    anonlink_solving = pytest.importorskip("anonlink.solving")
    order = np.lexsort((rgt, lft, -w))
    n = len(order)
    candidates = (
        w[order].astype(np.float64),
        (np.zeros(n, dtype=np.uint32), np.ones(n, dtype=np.uint32)),
        (lft[order].astype(np.uint32), rgt[order].astype(np.uint32)),
    )
    return _pairs_of(anonlink_solving.greedy_solve(candidates))


@pytest.mark.parametrize("levels", [None, 3, 10])
def test_equals_anonlink_greedy_solve(levels):
    pytest.importorskip("anonlink")
    rng = np.random.default_rng(levels or 0)
    w, lft, rgt = random_edges(rng, 4000, 900, 900, levels)
    # anonlink's candidates hold each record pair once.
    _, first = np.unique(np.stack([lft, rgt]), axis=1, return_index=True)
    w, lft, rgt = w[first], lft[first], rgt[first]
    acc = greedy_one_to_one(w, lft, rgt)
    ours = set(zip(lft[acc].tolist(), rgt[acc].tolist(), strict=True))
    assert ours == _anonlink_pairs(w, lft, rgt)


def test_equals_anonlink_on_its_own_candidates():
    # End to end on anonlink's format: its Dice candidate generation, its order, its solver.
    anonlink = pytest.importorskip("anonlink")
    bitarray = pytest.importorskip("bitarray")

    rng = np.random.default_rng(17)

    def filters(n):
        # Short, dense 64-bit filters make many Dice ties, the hard case for tie-breaking.
        packed = np.packbits(rng.random((n, 64)) < 0.4, axis=1)
        out = []
        for row in packed:
            bits = bitarray.bitarray()
            bits.frombytes(row.tobytes())
            out.append(bits)
        return out

    candidates = anonlink.candidate_generation.find_candidate_pairs(
        [filters(300), filters(250)], anonlink.similarities.dice_coefficient, 0.5
    )
    sims = np.asarray(candidates[0])
    lft, rgt = (np.asarray(r, dtype=np.int64) for r in candidates[2])
    assert len(set(sims.tolist())) < len(sims) // 10  # ties really are common
    acc = greedy_one_to_one(sims, lft, rgt)
    ours = set(zip(lft[acc].tolist(), rgt[acc].tolist(), strict=True))
    assert ours == _pairs_of(anonlink.solving.greedy_solve(candidates))
