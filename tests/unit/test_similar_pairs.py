"""The standing index's few-row Dice scan against a one-pass reference and the Dice kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage_service.core import _similar_pairs, from_packed
from linkage_service.core._similar_pairs import THRESHOLD_SLACK, similar_pairs
from linkage_service.core.dice import dice_candidates

pytestmark = pytest.mark.unit


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_new=st.integers(1, _similar_pairs.DIRECT_ROWS),
    n_other=st.integers(0, 45),
    threads=st.sampled_from([1, 2, 3, None]),
    threshold=st.sampled_from([0.5, 0.65, 0.9]),
)
def test_blocked_threaded_scan_equals_one_pass(seed, n_new, n_other, threads, threshold):
    rng = np.random.default_rng(seed)
    other_bits = rng.random((n_other, 128)) < rng.uniform(0.05, 0.5)
    new_bits = rng.random((n_new, 128)) < 0.3
    if n_other:  # near copies, so there are hits
        new_bits[0] = other_bits[rng.integers(n_other)] ^ (rng.random(128) < 0.05)
    new, other = (
        from_packed(np.packbits(b, axis=1).reshape(len(b), 16), 128) for b in (new_bits, other_bits)
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_similar_pairs, "SCAN_BLOCK_ROWS", 4)  # many blocks and spans
        left, right = similar_pairs(new, other, threshold, threads)
    t = threshold * (1 - THRESHOLD_SLACK)
    expected = set()
    for i in range(n_new):
        common = np.bitwise_count(other.words & new.words[i]).sum(axis=1)
        total = other.popcounts + new.popcounts[i]
        expected |= {(i, int(j)) for j in np.flatnonzero((2 * common >= t * total) & (common > 0))}
    got = list(zip(left.tolist(), right.tolist(), strict=True))
    assert len(got) == len(set(got)) and set(got) == expected
    kernel = dice_candidates(new, other, threshold, threads=1)
    assert set(zip(kernel.left.tolist(), kernel.right.tolist(), strict=True)) <= expected
