"""Dice pairs read off kept edges (the standing index's re-solve) against the Dice kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage_service.core import from_packed
from linkage_service.core._dice_edges import EdgeStore, accepted_pairs
from linkage_service.core.dice import dice_candidates

pytestmark = pytest.mark.unit


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_a=st.integers(0, 30),
    n_b=st.integers(0, 30),
    density=st.sampled_from([0.0, 0.05, 0.3, 0.6]),
    threshold=st.sampled_from([0.1, 0.5, 0.65, 0.8, 0.9, 1.0, 0.123456789]),
)
def test_accepted_pairs_equal_the_kernel_on_every_pair(seed, n_a, n_b, density, threshold):
    """Given every pair's common bits, anonlink's rule picks exactly what dice_candidates
    returns, in its order, with bit-identical scores (near-duplicates make ties and pairs at the
    threshold common)."""
    rng = np.random.default_rng(seed)
    bits_a = rng.random((n_a, 128)) < density
    bits_b = rng.random((n_b, 128)) < density
    if n_a and n_b:  # near copies of left rows on the right
        copies = rng.integers(0, n_a, size=min(n_a, n_b))
        flips = rng.random((copies.size, 128)) < 0.03
        bits_b[: copies.size] = bits_a[copies] ^ flips
    a, b = (from_packed(np.packbits(x, axis=1).reshape(len(x), 16), 128) for x in (bits_a, bits_b))
    left, right = (g.ravel().astype(np.int64) for g in np.meshgrid(np.arange(n_a), np.arange(n_b)))
    common = np.bitwise_count(a.words[left] & b.words[right]).sum(axis=1, dtype=np.int64)
    got = accepted_pairs(left, right, common, a.popcounts[left], b.popcounts[right], threshold)
    assert got.same_as(dice_candidates(a, b, threshold, threads=1))


def test_edges_follow_merges_even_when_the_label_record_is_gone():
    store = EdgeStore()
    active = np.ones(6, bool)
    store.add(np.array([0, 0]), np.array([1, 0]), np.array([0, 2]), np.array([5, 6]))
    store.add(np.array([4]), np.array([4]), np.array([5]), np.array([7]))
    store.merged([(0, 4)])  # component 0 (its label record 0 may be withdrawn) joins 4
    u, v, common = store.take(4, active)
    assert sorted(zip(u.tolist(), v.tolist(), common.tolist(), strict=True)) == [
        (0, 1, 5),
        (0, 2, 6),
        (4, 5, 7),
    ]
    active[2] = False
    u, v, _ = store.take(4, active)
    assert sorted(zip(u.tolist(), v.tolist(), strict=True)) == [(0, 1), (4, 5)]


def test_a_batch_meeting_itself_files_each_pair_once():
    store = EdgeStore()
    store.add(np.zeros(3, np.int64), np.array([1, 2, 1]), np.array([2, 1, 1]), np.array([3, 3, 9]))
    u, v, common = store.take(0, np.ones(3, bool))
    assert (u.tolist(), v.tolist(), common.tolist()) == ([1], [2], [3])


def test_unknown_edges_spread_through_merges():
    store = EdgeStore()
    store.mark_unknown(np.array([3]))
    assert store.known([1, 2]) and not store.known([3])
    store.merged([(3, 1)])
    assert not store.known([1])
    store.take(1, np.ones(4, bool))  # the index finds and files them again
    assert store.known([1])
