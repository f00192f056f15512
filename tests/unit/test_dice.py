"""Dice candidate generation: the fast kernel against the slow reference and anonlink."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage_service.core import _dice_kernels, dice
from linkage_service.core.bitmatrix import BitMatrix, from_packed
from linkage_service.core.candidates import CandidatePairs, empty_candidates, sorted_candidates
from linkage_service.core.dice import dice_candidates, dice_scores
from linkage_service.core.dice_reference import anonlink_max_delta, dice_candidates_reference
from linkage_service.core.errors import BitLengthError, CoreError, ThresholdError

pytestmark = pytest.mark.unit

METHODS = ["gemm", "popcount"]
N_BITS = 1024


def random_matrix(rng: np.random.Generator, n: int, density: float, n_bits: int = N_BITS):
    return from_packed(np.packbits(rng.random((n, n_bits)) < density, axis=1), n_bits)


def planted_pair(rng: np.random.Generator, n_a: int, n_b: int, flip: float, n_bits: int = N_BITS):
    """Right side: noisy copies of the first half of the left side plus fresh rows, shuffled."""
    bits_a = rng.random((n_a, n_bits)) < 0.28
    n_copies = min(n_a // 2, n_b)
    copies = bits_a[:n_copies] ^ (rng.random((n_copies, n_bits)) < flip)
    fresh = rng.random((n_b - n_copies, n_bits)) < 0.28
    bits_b = rng.permutation(np.concatenate([copies, fresh]))
    return (
        from_packed(np.packbits(bits_a, axis=1), n_bits),
        from_packed(np.packbits(bits_b, axis=1), n_bits),
    )


def assert_same(got: CandidatePairs, want: CandidatePairs) -> None:
    assert got.scores.dtype == np.float64 and got.left.dtype == got.right.dtype == np.int64
    assert len(got) == len(want)
    np.testing.assert_array_equal(got.left, want.left)
    np.testing.assert_array_equal(got.right, want.right)
    assert got.same_as(want)  # bit-identical scores


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of a few rows and columns, so small inputs cross tile, split and chunk boundaries."""
    for name, value in [
        ("POPCOUNT_TILE_ROWS", 5),
        ("POPCOUNT_TILE_COLS", 37),
        ("GEMM_TILE_ROWS", 7),
        ("GEMM_TILE_COLS", 29),
        ("GEMM_CHUNK_COLS", 61),
        ("EXACT_BATCH", 3),
        ("MIN_TILE_ROWS", 2),
    ]:
        monkeypatch.setattr(_dice_kernels, name, value)


# --- BitMatrix ---------------------------------------------------------------------------------


def test_from_packed_keeps_bits_and_counts():
    rng = np.random.default_rng(1)
    packed = np.packbits(rng.random((6, 128)) < 0.4, axis=1)
    m = from_packed(packed, 128)
    assert m.n == 6 and m.n_bits == 128 and m.words.shape == (6, 2)
    assert m.words.dtype == np.uint64 and m.words.flags.c_contiguous
    np.testing.assert_array_equal(m.words.view(np.uint8), packed)
    np.testing.assert_array_equal(m.popcounts, np.unpackbits(packed, axis=1).sum(axis=1))
    flat = from_packed(packed.ravel(), 128)
    np.testing.assert_array_equal(flat.words, m.words)


def test_from_packed_empty():
    m = from_packed(np.zeros((0, 128), np.uint8), 1024)
    assert m.n == 0 and m.words.shape == (0, 16) and m.popcounts.shape == (0,)
    assert from_packed(np.zeros(0, np.uint8), 1024).n == 0


@pytest.mark.parametrize("n_bits", [0, -64, 100, 1000, 1.5])
def test_from_packed_rejects_bad_length(n_bits):
    with pytest.raises(BitLengthError, match="multiple of 64"):
        from_packed(np.zeros((2, 16), np.uint8), n_bits)


def test_from_packed_rejects_byte_count_mismatch():
    with pytest.raises(BitLengthError, match="128 bytes"):
        from_packed(np.zeros((2, 128), np.uint8), 512)
    with pytest.raises(BitLengthError, match="not a whole number"):
        from_packed(np.zeros(100, np.uint8), 512)
    with pytest.raises(CoreError, match="uint8"):
        from_packed(np.zeros((2, 8), np.int32), 64)


def test_mismatched_lengths_rejected():
    a, b = (
        from_packed(np.zeros((1, 128), np.uint8), 1024),
        from_packed(np.zeros((1, 64), np.uint8), 512),
    )
    for call in (
        lambda: dice_candidates(a, b, 0.8),
        lambda: dice_candidates_reference(a, b, 0.8),
        lambda: dice_scores(a, b, [0], [0]),
    ):
        with pytest.raises(BitLengthError, match="1024 bits.*512 bits"):
            call()


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.0000001, 2, float("nan"), "high"])
def test_bad_threshold_rejected(threshold):
    m = from_packed(np.zeros((1, 8), np.uint8), 64)
    with pytest.raises(ThresholdError, match=r"\(0, 1\]"):
        dice_candidates(m, m, threshold)


def test_bad_method_and_threads_rejected():
    m = from_packed(np.zeros((1, 8), np.uint8), 64)
    with pytest.raises(CoreError, match="method"):
        dice_candidates(m, m, 0.5, method="magic")
    with pytest.raises(CoreError, match="threads"):
        dice_candidates(m, m, 0.5, threads=0)


# --- fast kernel == reference ------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("n_a", "n_b", "density", "threshold"),
    [
        (40, 300, 0.28, 0.8),
        (150, 90, 0.5, 0.5),
        (60, 60, 0.1, 0.3),
        (90, 120, 0.28, 0.7),
        (30, 30, 0.9, 0.95),
        (70, 50, 0.02, 0.5),
    ],
)
def test_random_matches_reference(small_tiles, method, threads, n_a, n_b, density, threshold):
    rng = np.random.default_rng(n_a * 1000 + n_b)
    a, b = random_matrix(rng, n_a, density), random_matrix(rng, n_b, density)
    got = dice_candidates(a, b, threshold, method=method, threads=threads)
    assert_same(got, dice_candidates_reference(a, b, threshold))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9, 1.0])
def test_planted_near_duplicates_match_reference(small_tiles, method, threshold):
    a, b = planted_pair(np.random.default_rng(7), 120, 150, flip=0.04)
    want = dice_candidates_reference(a, b, threshold)
    assert_same(dice_candidates(a, b, threshold, method=method, threads=2), want)
    if threshold <= 0.8:
        assert len(want) >= 30  # the planted copies are found


@pytest.mark.parametrize("method", METHODS)
def test_production_tiles_match_reference(method):
    """Default tile sizes (right spans over 2800 columns), the sampled w1 and both threads."""
    a, b = planted_pair(np.random.default_rng(12), 300, 3200, flip=0.06)
    for threshold in (0.65, 0.85):
        want = dice_candidates_reference(a, b, threshold)
        assert_same(dice_candidates(a, b, threshold, method=method, threads=2), want)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("w1", [1, 3, 8, 16])
def test_any_stage1_width_is_exact(small_tiles, monkeypatch, method, w1):
    monkeypatch.setattr(dice, "_choose_w1", lambda *args: w1)
    a, b = planted_pair(np.random.default_rng(w1), 80, 70, flip=0.08)
    for threshold in (0.4, 0.75):
        got = dice_candidates(a, b, threshold, method=method, threads=2)
        assert_same(got, dice_candidates_reference(a, b, threshold))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_bits", [64, 128, 2048])
def test_other_filter_lengths(small_tiles, method, n_bits):
    a, b = planted_pair(np.random.default_rng(n_bits), 40, 50, flip=0.05, n_bits=n_bits)
    for threshold in (0.5, 0.8):
        got = dice_candidates(a, b, threshold, method=method)
        assert_same(got, dice_candidates_reference(a, b, threshold))


@pytest.mark.parametrize("method", METHODS)
def test_edge_rows(small_tiles, method):
    rng = np.random.default_rng(3)
    packed = np.packbits(rng.random((12, N_BITS)) < 0.3, axis=1)
    packed[0] = 0  # all-zero rows on both sides
    packed[5] = packed[4]  # identical rows
    packed[6] = 255  # all ones
    a = from_packed(packed, N_BITS)
    b = from_packed(packed[::-1].copy(), N_BITS)
    for threshold in (0.05, 0.3, 0.5, 1.0):
        want = dice_candidates_reference(a, b, threshold)
        assert_same(dice_candidates(a, b, threshold, method=method), want)
    ones = dice_candidates(a, b, 1.0, method=method)
    assert np.all(ones.scores == 1.0) and 0 not in ones.left  # zero rows never match


@pytest.mark.parametrize("method", METHODS)
def test_one_record_and_empty_sides(method):
    rng = np.random.default_rng(4)
    one, many = random_matrix(rng, 1, 0.3), random_matrix(rng, 20, 0.3)
    empty = from_packed(np.zeros((0, N_BITS // 8), np.uint8), N_BITS)
    got = dice_candidates(one, one, 1.0, method=method)
    assert (got.left.tolist(), got.right.tolist(), got.scores.tolist()) == ([0], [0], [1.0])
    assert_same(
        dice_candidates(one, many, 0.2, method=method), dice_candidates_reference(one, many, 0.2)
    )
    for a, b in ((empty, many), (many, empty), (empty, empty)):
        assert_same(dice_candidates(a, b, 0.5, method=method), empty_candidates())
    zero = from_packed(np.zeros((3, N_BITS // 8), np.uint8), N_BITS)
    assert len(dice_candidates(zero, zero, 0.01, method=method)) == 0


def boundary_pair() -> tuple[BitMatrix, BitMatrix]:
    """Row 0 of the left side is a subset of row 0 of the right side with Dice exactly 0.75.

    anonlink's popcount rule rejects it with the smaller record on the left: 2 * 300 * (1/0.75 - 1)
    evaluates to just under 200 and truncates to 199 < 500 - 300. The other way round it passes.
    """
    small, big = np.zeros(N_BITS, bool), np.zeros(N_BITS, bool)
    small[:300], big[:500] = True, True
    rng = np.random.default_rng(9)
    filler = np.packbits(rng.random((4, N_BITS)) < 0.3, axis=1)
    a = from_packed(np.concatenate([np.packbits(small)[None], filler]), N_BITS)
    b = from_packed(np.concatenate([np.packbits(big)[None], filler]), N_BITS)
    return a, b


@pytest.mark.parametrize("method", METHODS)
def test_anonlink_popcount_rule_at_its_boundary(small_tiles, method):
    a, b = boundary_pair()
    assert anonlink_max_delta(300, 0.75) == 199
    assert dice_scores(a, b, [0], [0]).tolist() == [0.75]
    forward = as_dict(dice_candidates(a, b, 0.75, method=method))
    backward = as_dict(dice_candidates(b, a, 0.75, method=method))
    assert (0, 0) not in forward and backward[0, 0] == 0.75
    assert_same(dice_candidates(a, b, 0.75, method=method), dice_candidates_reference(a, b, 0.75))
    assert_same(dice_candidates(b, a, 0.75, method=method), dice_candidates_reference(b, a, 0.75))


def test_auto_picks_a_method_once_and_matches():
    assert dice.fastest_method() in ("gemm", "popcount")
    assert dice.fastest_method() == dice.fastest_method()
    a, b = planted_pair(np.random.default_rng(8), 60, 80, flip=0.05)
    assert_same(dice_candidates(a, b, 0.7), dice_candidates_reference(a, b, 0.7))


def test_dice_scores():
    rng = np.random.default_rng(5)
    a, b = random_matrix(rng, 10, 0.3), random_matrix(rng, 12, 0.3)
    zero = from_packed(np.zeros((1, N_BITS // 8), np.uint8), N_BITS)
    cands = dice_candidates_reference(a, b, 0.01)
    scores = dice_scores(a, b, cands.left, cands.right)
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, cands.scores)
    assert dice_scores(zero, zero, [0], [0]).tolist() == [0.0]
    assert dice_scores(zero, a, [0], [0]).tolist() == [0.0]


# --- properties --------------------------------------------------------------------------------


def as_dict(c: CandidatePairs, swap: bool = False) -> dict[tuple[int, int], float]:
    pairs = zip(c.right, c.left, strict=True) if swap else zip(c.left, c.right, strict=True)
    return {(int(i), int(j)): float(s) for (i, j), s in zip(pairs, c.scores, strict=True)}


matrices = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(0, 25),
    st.integers(0, 25),
    st.sampled_from([64, 256, 1024]),
    st.floats(0.02, 0.98),
)
thresholds = st.floats(0.05, 1.0)
settings_ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def build(spec) -> tuple[BitMatrix, BitMatrix]:
    seed, n_a, n_b, n_bits, density = spec
    rng = np.random.default_rng(seed)
    a = random_matrix(rng, n_a, density, n_bits)
    rows = rng.random((n_b, n_bits)) < density
    if n_a and n_b:  # some near-copies so that candidates exist at high thresholds
        k = min(n_a, n_b) // 2
        rows[:k] = np.unpackbits(a.words[:k].view(np.uint8), axis=1).astype(bool)
        rows[:k] ^= rng.random((k, n_bits)) < 0.03
    return a, from_packed(np.packbits(rows, axis=1), n_bits)


@settings_
@given(spec=matrices, threshold=thresholds, method=st.sampled_from(METHODS))
def test_property_matches_reference(small_tiles, spec, threshold, method):
    a, b = build(spec)
    assert_same(
        dice_candidates(a, b, threshold, method=method, threads=2),
        dice_candidates_reference(a, b, threshold),
    )


@settings_
@given(spec=matrices, threshold=thresholds, method=st.sampled_from(METHODS))
def test_property_symmetry(small_tiles, spec, threshold, method):
    """Swapping sides transposes the set; only anonlink's one-sided popcount rule may differ."""
    a, b = build(spec)
    forward = as_dict(dice_candidates(a, b, threshold, method=method))
    backward = as_dict(dice_candidates(b, a, threshold, method=method), swap=True)
    for i, j in forward.keys() & backward.keys():
        assert forward[i, j] == backward[i, j]
    for i, j in forward.keys() - backward.keys():  # rejected with b[j] on the left
        pa, pb = int(a.popcounts[i]), int(b.popcounts[j])
        assert abs(pa - pb) > anonlink_max_delta(pb, threshold)
    for i, j in backward.keys() - forward.keys():
        pa, pb = int(a.popcounts[i]), int(b.popcounts[j])
        assert abs(pa - pb) > anonlink_max_delta(pa, threshold)


@settings_
@given(spec=matrices, t1=thresholds, t2=thresholds, method=st.sampled_from(METHODS))
def test_property_lower_threshold_gives_superset(small_tiles, spec, t1, t2, method):
    a, b = build(spec)
    low, high = sorted((t1, t2))
    at_low = as_dict(dice_candidates(a, b, low, method=method))
    at_high = as_dict(dice_candidates(a, b, high, method=method))
    assert at_high.keys() <= at_low.keys()
    assert all(at_low[k] == s for k, s in at_high.items())


@settings_
@given(spec=matrices, threshold=thresholds, method=st.sampled_from(METHODS))
def test_property_order(small_tiles, spec, threshold, method):
    got = dice_candidates(*build(spec), threshold, method=method, threads=2)
    keys = list(zip(-got.scores, got.left, got.right, strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert np.all(got.scores >= threshold)
    assert_same(sorted_candidates(got.scores[::-1], got.left[::-1], got.right[::-1]), got)


# --- anonlink, the independent oracle ----------------------------------------------------------


def anonlink_candidates(a: BitMatrix, b: BitMatrix, threshold: float) -> CandidatePairs:
    bitarray = pytest.importorskip("bitarray").bitarray
    similarities = pytest.importorskip("anonlink.similarities")

    def to_bitarrays(m: BitMatrix) -> list:
        out = []
        for row in m.words:
            x = bitarray(endian="big")
            x.frombytes(row.tobytes())
            out.append(x)
        return out

    scores, (left, right) = similarities.dice_coefficient_accelerated(
        (to_bitarrays(a), to_bitarrays(b)), threshold
    )
    return CandidatePairs(
        scores=np.asarray(scores, np.float64),
        left=np.asarray(left, np.int64),
        right=np.asarray(right, np.int64),
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("threshold", [0.3, 0.5, 2 / 3, 0.75, 0.8, 0.9, 1.0])
def test_equals_anonlink(small_tiles, method, threshold):
    rng = np.random.default_rng(11)
    a, b = planted_pair(rng, 150, 200, flip=0.05)
    packed = np.concatenate([a.words.view(np.uint8), np.zeros((2, N_BITS // 8), np.uint8)])
    a = from_packed(packed, N_BITS)  # with all-zero left rows
    want = anonlink_candidates(a, b, threshold)
    assert_same(dice_candidates(a, b, threshold, method=method, threads=2), want)
    assert_same(dice_candidates_reference(a, b, threshold), want)


@pytest.mark.parametrize("method", METHODS)
def test_equals_anonlink_at_popcount_rule_boundary(method):
    a, b = boundary_pair()
    for left, right in ((a, b), (b, a)):
        want = anonlink_candidates(left, right, 0.75)
        assert_same(dice_candidates(left, right, 0.75, method=method), want)
