"""Exact all-pairs Dice candidate generation on packed bit matrices.

``dice_candidates`` returns exactly what anonlink's ``dice_coefficient_accelerated`` returns (same
pairs, bit-identical float64 scores, same order); ``dice_reference`` spells out the rule.

Two stages (details and the proof that stage 1 loses nothing: ``_dice_kernels``):

1. A cheap superset filter over all pairs: common bits in the first ``w1`` 64-bit words plus the
   smaller rest popcount must reach the threshold. ``w1`` is chosen per call from a sample of pairs,
   trading words against survivors, so the filter stays useful at low thresholds (up to all words).
   Two formulations: ``"gemm"``, a float32 BLAS GEMM on unpacked bits with the threshold folded
   into three extra columns, and ``"popcount"``, numpy ufuncs on word-major ``uint64`` (AND,
   popcount, small-integer sums; no BLAS). Which is faster depends on the CPU and the BLAS kernel
   (on a 2-core Zen 4, popcount is about 2x faster; the shared notes measured GEMM ~1.25x faster
   than a popcount variant on a Zen 5 with OpenBLAS's AVX-512 kernel), so ``"auto"`` times both
   once per process and keeps the faster.
2. Survivors get the exact integer popcount on the packed words and anonlink's acceptance rule.

Python threads take tiles from a shared queue; numpy releases the GIL inside BLAS and ufunc loops.
With ``gemm`` the process's BLAS is held to one thread for the call via threadpoolctl (a
process-wide setting while the call runs), because the Python threads already use every core.

Peak extra memory, besides the output: sorted copies of both sides (``n_bits/8`` bytes per record
plus ~40 bytes of counts and ``8 * w1`` bytes of word-major copies), then per thread one tile's
buffers: ``popcount`` 13 bytes per tile cell (64 x 6000 cells: 5 MB); ``gemm`` 5 bytes per cell
(512 x 4096: 10 MB) plus 512 unpacked rows, and one float32 chunk of at most 16384 right-side
rows shared by the threads (30 MB at 1024 bits). Survivors are checked in batches of 65536.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from linkage_service.core import _dice_kernels as kernels
from linkage_service.core.bitmatrix import BitMatrix, from_packed
from linkage_service.core.candidates import CandidatePairs, empty_candidates, sorted_candidates
from linkage_service.core.errors import BitLengthError, CoreError, ThresholdError

__all__ = ["METHODS", "check_dice_inputs", "dice_candidates", "dice_scores", "fastest_method"]

METHODS = ("auto", "gemm", "popcount")
# Stage-1 width choice: a sample of at most SAMPLE_ROWS x SAMPLE_COLS pairs (and 1 / SAMPLE_SHARE
# of all pairs), and the cost of one survivor counted in "stage-1 words per pair": an exact check
# (gathers 2 rows) costs ~100 ns, a stage-1 word ~0.6 ns per pair (popcount) or ~1.4 ns (float32
# GEMM, 64 FMAs).
SAMPLE_ROWS = 256
SAMPLE_COLS = 1024
SAMPLE_SHARE = 100
SURVIVOR_COST_WORDS = {"popcount": 160.0, "gemm": 70.0}
# "auto" times both methods once on random 1024-bit filters (left rows x right rows, best of 2):
# ~40 ms, once per process.
CALIBRATION_SHAPE = (256, 4000)
N_BITS = 1024
CALIBRATION_WORDS = 7
INT64_LIMIT = 2.0**63
UINT32_MASK = 0xFFFFFFFF

_fastest: dict[str, str] = {}
_fastest_lock = threading.Lock()


def check_dice_inputs(a: BitMatrix, b: BitMatrix, threshold: float) -> float:
    """Validate a Dice call; return the threshold as a float."""
    _check_same_length(a, b)
    try:
        t = float(threshold)
    except (TypeError, ValueError) as e:
        raise ThresholdError(f"threshold must be a number in (0, 1], got {threshold!r}") from e
    if not 0.0 < t <= 1.0:
        raise ThresholdError(f"threshold must be in (0, 1], got {threshold!r}")
    return t


def _check_same_length(a: BitMatrix, b: BitMatrix) -> None:
    if a.n_bits != b.n_bits:
        raise BitLengthError(
            f"filter lengths differ: left has {a.n_bits} bits, right has {b.n_bits} bits"
        )


def dice_scores(a: BitMatrix, b: BitMatrix, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Dice ``2|a_i & b_j| / (|a_i| + |b_j|)`` for the pairs ``(left[k], right[k])``.

    Returns ``np.float64`` of the pairs' shape; 0.0 where both popcounts are 0.
    """
    _check_same_length(a, b)
    left, right = np.asarray(left, dtype=np.intp), np.asarray(right, dtype=np.intp)
    uv = np.bitwise_count(a.words[left] & b.words[right]).sum(axis=-1, dtype=np.int64)
    denom = (a.popcounts[left] + b.popcounts[right]).astype(np.float64)
    out = np.zeros(uv.shape, dtype=np.float64)
    np.divide((2 * uv).astype(np.float64), denom, out=out, where=denom > 0)
    return out


def anonlink_max_deltas(popcounts: np.ndarray, threshold: float) -> np.ndarray:
    """anonlink's ``(uint32_t)(2 * pa * (1/t - 1))`` per row (see ``dice_reference``), as int64."""
    bound = (2 * popcounts).astype(np.float64) * (1 / threshold - 1)
    bound = np.where(bound < INT64_LIMIT, bound, 0.0)
    return bound.astype(np.int64) & UINT32_MASK


def dice_candidates(
    a: BitMatrix,
    b: BitMatrix,
    threshold: float,
    *,
    threads: int | None = None,
    method: str = "auto",
) -> CandidatePairs:
    """All pairs (i in ``a``, j in ``b``) with Dice >= ``threshold``, exactly as anonlink has them.

    Args:
        a, b: left and right encodings, same ``n_bits``.
        threshold: in (0, 1].
        threads: worker threads (default ``os.cpu_count()``).
        method: stage-1 formulation, ``"auto"`` (the faster on this machine), ``"gemm"`` or
            ``"popcount"``. All give the same result.

    Returns:
        ``CandidatePairs`` ordered by (-score, left, right).
    """
    t = check_dice_inputs(a, b, threshold)
    if method not in METHODS:
        raise CoreError(f"method must be one of {METHODS}, got {method!r}")
    n_threads = _check_threads(threads)
    live = np.flatnonzero(a.popcounts > 0)  # anonlink never pairs an all-zero left record
    if live.size == 0 or b.n == 0:
        return empty_candidates()
    method = fastest_method() if method == "auto" else method
    parts = _run(_make_plan(a, b, live, t, method), method, n_threads)
    if not parts:
        return empty_candidates()
    return sorted_candidates(*(np.concatenate(col) for col in zip(*parts, strict=True)))


def _check_threads(threads: int | None) -> int:
    if threads is None:
        return os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise CoreError(f"threads must be a positive int or None, got {threads!r}")
    return int(threads)


def _run(plan: kernels.Plan, method: str, n_threads: int) -> list[kernels.Part]:
    if method == "popcount":
        return kernels.run_popcount(plan, n_threads)
    with threadpool_limits(limits=1, user_api="blas"):
        return kernels.run_gemm(plan, n_threads)


def _make_plan(
    a: BitMatrix, b: BitMatrix, live: np.ndarray, t: float, method: str, w1: int | None = None
) -> kernels.Plan:
    a_words = a.words[live]
    if w1 is None:
        w1 = _choose_w1(a_words, b.words, t, SURVIVOR_COST_WORDS[method])
    # Sorting by rest popcount lets each tile fold in nearly min(ra, rb) (see _dice_kernels).
    a_ids = live[np.argsort(kernels.rests(a_words, w1), kind="stable")]
    b_ids = np.argsort(kernels.rests(b.words, w1), kind="stable").astype(np.int64)
    a_sorted, b_sorted = a.words[a_ids], b.words[b_ids]
    pa = a.popcounts[a_ids].astype(np.int64)
    return kernels.Plan(
        threshold=t,
        n_bits=a.n_bits,
        w1=w1,
        a_ids=a_ids,
        b_ids=b_ids,
        a_words=a_sorted,
        b_words=b_sorted,
        pa=pa,
        pb=b.popcounts[b_ids].astype(np.int64),
        ra=kernels.rests(a_sorted, w1),
        rb=kernels.rests(b_sorted, w1),
        max_delta=anonlink_max_deltas(pa, t),
    )


def _choose_w1(a_words: np.ndarray, b_words: np.ndarray, t: float, survivor_cost: float) -> int:
    """Stage-1 width minimising ``w1 + survivor_cost * survivor_fraction`` on a sample of pairs.

    The fraction uses the same integer bound as the popcount kernel with the exact min(ra, rb).
    """
    # At most 1/SAMPLE_SHARE of the work: small calls must not pay for a big sample.
    share = len(a_words) * len(b_words) / SAMPLE_SHARE
    scale = min(1.0, (share / SAMPLE_ROWS / SAMPLE_COLS) ** 0.5)
    sa, sb = (
        _evenly_spaced(a_words, SAMPLE_ROWS * scale),
        _evenly_spaced(b_words, SAMPLE_COLS * scale),
    )
    counts_a, counts_b = (np.bitwise_count(s).astype(np.int64) for s in (sa, sb))
    rest_a, rest_b = counts_a.sum(axis=1), counts_b.sum(axis=1)  # all words still ahead
    need = np.floor(0.5 * t * rest_a)[:, None] + np.floor(0.5 * t * rest_b)[None, :] - 1
    uv = np.zeros(need.shape, dtype=np.int64)
    best_w, best_cost = sa.shape[1], np.inf
    for w in range(sa.shape[1]):
        if w + 1 >= best_cost:  # cost >= w1, so wider stages cannot win any more
            break
        uv += np.bitwise_count(sa[:, None, w] & sb[None, :, w])
        rest_a, rest_b = rest_a - counts_a[:, w], rest_b - counts_b[:, w]
        bound = uv + np.minimum(rest_a[:, None], rest_b[None, :])
        cost = w + 1 + survivor_cost * np.count_nonzero(bound >= need) / need.size
        if cost < best_cost:
            best_w, best_cost = w + 1, cost
    return best_w


def _evenly_spaced(words: np.ndarray, count: float) -> np.ndarray:
    """About ``count`` rows spread over ``words`` (deterministic, so the choice is repeatable)."""
    return words[np.unique(np.linspace(0, len(words) - 1, max(1, round(count))).astype(np.intp))]


def fastest_method() -> str:
    """The faster stage-1 method on this CPU and BLAS, timed once per process (single thread)."""
    with _fastest_lock:
        if "method" not in _fastest:
            _fastest["method"] = _time_methods()
        return _fastest["method"]


def _time_methods() -> str:
    rng = np.random.default_rng(0)
    shape = CALIBRATION_SHAPE
    a, b = (from_packed(np.packbits(rng.random((n, N_BITS)) < 0.28, axis=1), N_BITS) for n in shape)
    best = {"gemm": np.inf, "popcount": np.inf}
    for _ in range(2):
        for method in best:
            plan = _make_plan(a, b, np.arange(a.n), 0.8, method, w1=CALIBRATION_WORDS)
            start = time.perf_counter()
            _run(plan, method, 1)
            best[method] = min(best[method], time.perf_counter() - start)
    return min(best, key=best.__getitem__)
