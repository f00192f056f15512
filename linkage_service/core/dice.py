"""Exact all-pairs Dice candidate generation on packed bit matrices.

``dice_candidates`` returns exactly what anonlink's ``dice_coefficient_accelerated`` returns (same
pairs, bit-identical float64 scores, same order); ``dice_reference`` spells out the rule.

How (see the shared matching-kernels notes for the measurements behind it):

1. Stage 1 bounds ``|a & b|`` cheaply for every pair from the first ``w1`` 64-bit words:
   ``uv <= uv1 + min(ra, rb)``, where ``uv1`` counts common bits in those words and ``ra``, ``rb`` are
   the popcounts of the remaining words. Rows of both sides are sorted by that rest popcount, so in
   each tile a column split decides which side's rest is the smaller one and both halves fold it in
   as a per-row or per-column constant. A pair survives when the bound reaches the threshold.
   ``w1`` is chosen per call from a small sample of pairs, trading words against survivors, so the
   bound stays useful at low thresholds (up to ``w1 = all words`` there). Exactness never depends
   on that choice.
2. Survivors get the exact integer popcount on the packed words and anonlink's acceptance rule.

Stage 1 has two formulations: ``method="gemm"`` (float32 BLAS GEMM on unpacked bits, with the
threshold folded into three extra columns) and ``method="popcount"`` (numpy ufuncs on word-major
``uint64``: AND, popcount, small-integer sums; no BLAS). Python threads take tiles from a shared
queue; numpy releases the GIL inside BLAS and ufunc loops. With ``gemm`` the process's BLAS is held
to one thread per call via threadpoolctl (a process-wide setting while the call runs), because the
threads already use every core.

Peak extra memory, besides the output: sorted copies of both sides (``n_bits/8`` bytes per record
plus 24 bytes of counts), then per thread one tile's buffers: ``popcount`` about 19 bytes per tile
cell (32 x 4096 cells: 2.5 MB); ``gemm`` 5 bytes per cell (512 x 4096: 10 MB) plus the unpacked
tile rows, and one float32 chunk of at most ``GEMM_CHUNK_COLS`` right-side rows shared by all
threads (16384 rows x 451 columns x 4 bytes: 30 MB at 1024 bits).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from linkage_service.core.bitmatrix import WORD_BITS, BitMatrix
from linkage_service.core.candidates import CandidatePairs, empty_candidates, sorted_candidates
from linkage_service.core.errors import BitLengthError, CoreError, ThresholdError

__all__ = ["METHODS", "check_dice_inputs", "dice_candidates", "dice_scores"]

METHODS = ("gemm", "popcount")

# Tile shapes (rows of the left side x columns of the right side), tuned on a 2-core Zen 4.
# popcount: the uint64 AND temporary (rows x cols x 8 bytes) should stay in L2; power-of-two row
# widths of 1024/2048 words hit cache-set conflicts on that machine, 4096 does not.
POPCOUNT_TILE_ROWS = 32
POPCOUNT_TILE_COLS = 4096
# gemm: big enough that OpenBLAS's packing of the right operand is amortised over many rows.
GEMM_TILE_ROWS = 512
GEMM_TILE_COLS = 4096
GEMM_CHUNK_COLS = 16384
# float32 slack below zero for the folded GEMM output. Its rounding error is below 0.07 for 1024-bit
# filters (at most ~500 roundings of ~1e-4 once the non-integer threshold columns enter the sum).
GEMM_SLACK = 0.5
# Stage-1 width choice: a sample of at most this many pairs, and the cost of one survivor counted
# in "stage-1 words per pair": an exact check (gathers 2 rows) costs ~100 ns, a stage-1 word
# ~0.6 ns per pair (popcount) or ~1.4 ns (float32 GEMM, 64 FMAs).
SAMPLE_ROWS = 256
SAMPLE_COLS = 1024
SURVIVOR_COST_WORDS = {"popcount": 160.0, "gemm": 70.0}
# Survivors per exact-check call.
EXACT_BATCH = 1 << 16
# Partial sums of at most 3 words' popcounts (<= 192) fit in uint8.
WORDS_PER_UINT8_SUM = 3
INT64_LIMIT = 2.0**63
UINT32_MASK = 0xFFFFFFFF


def check_dice_inputs(a: BitMatrix, b: BitMatrix, threshold: float) -> float:
    """Validate a Dice call; return the threshold as a float."""
    if a.n_bits != b.n_bits:
        raise BitLengthError(f"filter lengths differ: left has {a.n_bits} bits, right has "
                             f"{b.n_bits} bits")
    try:
        t = float(threshold)
    except (TypeError, ValueError) as e:
        raise ThresholdError(f"threshold must be a number in (0, 1], got {threshold!r}") from e
    if not 0.0 < t <= 1.0:
        raise ThresholdError(f"threshold must be in (0, 1], got {threshold!r}")
    return t


def dice_scores(a: BitMatrix, b: BitMatrix, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Dice ``2|a_i & b_j| / (|a_i| + |b_j|)`` for the pairs ``(left[k], right[k])``.

    Returns ``np.float64`` of the pairs' shape; 0.0 where both popcounts are 0.
    """
    if a.n_bits != b.n_bits:
        raise BitLengthError(f"filter lengths differ: left has {a.n_bits} bits, right has "
                             f"{b.n_bits} bits")
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


def dice_candidates(a: BitMatrix, b: BitMatrix, threshold: float, *, threads: int | None = None,
                    method: str = "gemm") -> CandidatePairs:
    """All pairs (i in ``a``, j in ``b``) with Dice >= ``threshold``, exactly as anonlink finds them.

    Args:
        a, b: left and right encodings, same ``n_bits``.
        threshold: in (0, 1].
        threads: worker threads (default ``os.cpu_count()``).
        method: ``"gemm"`` (BLAS stage 1) or ``"popcount"`` (ufunc stage 1); same result.

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
    plan = _make_plan(a, b, live, t, method)
    if method == "popcount":
        parts = _run_popcount(plan, n_threads)
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            parts = _run_gemm(plan, n_threads)
    if not parts:
        return empty_candidates()
    return sorted_candidates(*(np.concatenate(col) for col in zip(*parts, strict=True)))


def _check_threads(threads: int | None) -> int:
    if threads is None:
        return os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise CoreError(f"threads must be a positive int or None, got {threads!r}")
    return int(threads)


@dataclass(frozen=True)
class _Plan:
    """Both sides sorted by rest popcount, with everything stage 1 and the exact check need."""

    threshold: float
    n_bits: int
    w1: int  # words in stage 1
    a_ids: np.ndarray  # int64: original left row of each sorted row
    b_ids: np.ndarray
    a_words: np.ndarray  # uint64 (n, n_bits/64), sorted rows
    b_words: np.ndarray
    pa: np.ndarray  # int64 popcounts, sorted rows
    pb: np.ndarray
    ra: np.ndarray  # int64 popcount of the words after the first w1, ascending
    rb: np.ndarray
    max_delta: np.ndarray  # int64 anonlink popcount-difference bound per left row

    def exact(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
        """anonlink's rule on stage-1 survivors: (scores, left ids, right ids) of the kept ones."""
        uv = np.bitwise_count(self.a_words[rows] & self.b_words[cols]).sum(axis=1, dtype=np.int64)
        pa, pb = self.pa[rows], self.pb[cols]
        scores = (2 * uv).astype(np.float64) / (pa + pb).astype(np.float64)
        keep = (np.abs(pa - pb) <= self.max_delta[rows]) & (scores >= self.threshold)
        return scores[keep], self.a_ids[rows[keep]], self.b_ids[cols[keep]]

    def split(self, r1: int, c0: int, c1: int) -> int:
        """Columns in [c0, c1) whose rest is below the tile's largest left rest: fold rb there."""
        return int(np.clip(np.searchsorted(self.rb, self.ra[r1 - 1]), c0, c1)) - c0

    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """``t/2 * p`` per side: the pair passes when ``uv >= half_a + half_b``."""
        return 0.5 * self.threshold * self.pa, 0.5 * self.threshold * self.pb


def _rests(words: np.ndarray, w1: int) -> np.ndarray:
    return np.bitwise_count(words[:, w1:]).sum(axis=1, dtype=np.int64)


def _make_plan(a: BitMatrix, b: BitMatrix, live: np.ndarray, t: float, method: str) -> _Plan:
    a_words = a.words[live]
    w1 = _choose_w1(a_words, b.words, t, SURVIVOR_COST_WORDS[method])
    a_order = np.argsort(_rests(a_words, w1), kind="stable")
    b_order = np.argsort(_rests(b.words, w1), kind="stable")
    a_ids, b_ids = live[a_order], b_order.astype(np.int64)
    a_sorted, b_sorted = a.words[a_ids], b.words[b_ids]
    pa = a.popcounts[a_ids].astype(np.int64)
    return _Plan(threshold=t, n_bits=a.n_bits, w1=w1, a_ids=a_ids, b_ids=b_ids,
                 a_words=a_sorted, b_words=b_sorted, pa=pa,
                 pb=b.popcounts[b_ids].astype(np.int64), ra=_rests(a_sorted, w1),
                 rb=_rests(b_sorted, w1), max_delta=anonlink_max_deltas(pa, t))


def _choose_w1(a_words: np.ndarray, b_words: np.ndarray, t: float, survivor_cost: float) -> int:
    """Stage-1 width minimising ``w1 + survivor_cost * survivor_fraction`` on a sample of pairs."""
    sa = a_words[np.unique(np.linspace(0, len(a_words) - 1, SAMPLE_ROWS).astype(np.intp))]
    sb = b_words[np.unique(np.linspace(0, len(b_words) - 1, SAMPLE_COLS).astype(np.intp))]
    counts_a, counts_b = np.bitwise_count(sa).astype(np.int64), np.bitwise_count(sb).astype(np.int64)
    rest_a, rest_b = counts_a.sum(axis=1), counts_b.sum(axis=1)
    need = (np.floor(0.5 * t * rest_a)[:, None] + np.floor(0.5 * t * rest_b)[None, :] - 1)
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


def _tiles(n_rows: int, c_start: int, c_stop: int, rows: int, cols: int):
    """Tasks (r0, r1, c0, c1), column tile outermost so a right-side tile stays in cache."""
    return [(r0, min(n_rows, r0 + rows), c0, min(c_stop, c0 + cols))
            for c0 in range(c_start, c_stop, cols) for r0 in range(0, n_rows, rows)]


def _run_tiles(plan: _Plan, tasks: Iterable[tuple[int, int, int, int]], make_kernel: Callable,
               n_threads: int) -> list[tuple[np.ndarray, ...]]:
    """Run ``make_kernel()(*task) -> (rows, cols)`` over tasks on ``n_threads`` threads.

    Survivors are batched before the exact check: its per-call overhead (~10 us) would otherwise
    exceed its work at a few dozen survivors per tile.
    """
    queue, lock = iter(tasks), threading.Lock()

    def worker() -> list[tuple[np.ndarray, ...]]:
        kernel, found = make_kernel(), []  # per-thread buffers, reused for every tile
        batch: list[tuple[np.ndarray, np.ndarray]] = []
        pending = 0
        while True:
            with lock:
                task = next(queue, None)
            if task is not None:
                batch.append(kernel(*task))
                pending += batch[-1][0].size
            if pending and (task is None or pending >= EXACT_BATCH):
                found.append(plan.exact(*(np.concatenate(c) for c in zip(*batch, strict=True))))
                batch, pending = [], 0
            if task is None:
                return found

    if n_threads == 1:
        return worker()
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        futures = [pool.submit(worker) for _ in range(n_threads)]
        return [part for f in futures for part in f.result()]


def _run_popcount(plan: _Plan, n_threads: int) -> list[tuple[np.ndarray, ...]]:
    """Stage 1 as uint64 AND + popcount on word-major copies of the first ``w1`` words."""
    offset = plan.n_bits + 1  # keeps every accumulator and threshold non-negative
    acc_type = np.uint16 if 2 * plan.n_bits + 1 <= np.iinfo(np.uint16).max else np.uint32
    half_a, half_b = plan.halves()
    floor_a, floor_b = np.floor(half_a).astype(np.int64), np.floor(half_b).astype(np.int64)
    # Keep the pair when uv1 + rest >= floor_a + floor_b - 1: a superset of uv >= half_a + half_b,
    # as both sides are integers and each floor is within 1 of its half (proof in the module doc).
    start_rb = (offset - floor_b + plan.rb).astype(acc_type)  # rest of the right row folded in
    start_0 = (offset - floor_b).astype(acc_type)
    need_rb = (offset + floor_a - 1).astype(acc_type)
    need_ra = (offset + floor_a - 1 - plan.ra).astype(acc_type)  # rest of the left row folded in
    a_wm = np.ascontiguousarray(plan.a_words[:, :plan.w1].T)
    b_wm = np.ascontiguousarray(plan.b_words[:, :plan.w1].T)
    groups = [range(w, min(w + WORDS_PER_UINT8_SUM, plan.w1))
              for w in range(0, plan.w1, WORDS_PER_UINT8_SUM)]

    def make_kernel() -> Callable:
        size = POPCOUNT_TILE_ROWS * POPCOUNT_TILE_COLS
        and_buf, cnt_buf = np.empty(size, np.uint64), np.empty(size, np.uint8)
        part_buf, acc_buf = np.empty(size, np.uint8), np.empty(size, acc_type)
        mask_buf = np.empty(size, np.bool_)

        def kernel(r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, ...]:
            shape = (r1 - r0, c1 - c0)
            s = plan.split(r1, c0, c1)
            anded, cnt, part, acc, mask = (buf[: shape[0] * shape[1]].reshape(shape) for buf in
                                           (and_buf, cnt_buf, part_buf, acc_buf, mask_buf))
            acc[:, :s] = start_rb[c0:c0 + s]
            acc[:, s:] = start_0[c0 + s:c1]
            for group in groups:
                for k, w in enumerate(group):
                    np.bitwise_and(a_wm[w, r0:r1, None], b_wm[w, None, c0:c1], out=anded)
                    np.bitwise_count(anded, out=part if k == 0 else cnt)
                    if k:
                        np.add(part, cnt, out=part)
                np.add(acc, part, out=acc)
            np.greater_equal(acc[:, :s], need_rb[r0:r1, None], out=mask[:, :s])
            np.greater_equal(acc[:, s:], need_ra[r0:r1, None], out=mask[:, s:])
            flat = np.flatnonzero(mask)
            return r0 + flat // shape[1], c0 + flat % shape[1]

        return kernel

    tasks = _tiles(len(plan.a_ids), 0, len(plan.b_ids), POPCOUNT_TILE_ROWS, POPCOUNT_TILE_COLS)
    return _run_tiles(plan, tasks, make_kernel, n_threads)


def _unpack_stage1(words: np.ndarray, w1: int, out: np.ndarray) -> None:
    """Bits of the first ``w1`` words of each row, as float32, into ``out[:, :64*w1]``."""
    out[:, : w1 * WORD_BITS] = np.unpackbits(words[:, :w1].view(np.uint8), axis=1)


def _run_gemm(plan: _Plan, n_threads: int) -> list[tuple[np.ndarray, ...]]:
    """Stage 1 as one float32 GEMM per tile: ``D = uv1 + rest - half_a - half_b``, keep ``D >= 0``.

    Columns: left ``[bits, -half_a (+ ra), 1, g]``, right ``[bits, 1, -half_b, rb]``; ``g = 1``
    folds ``rb`` (split's left part), ``g = 0`` with ``+ ra`` folds ``ra`` (right part).
    """
    k1 = plan.w1 * WORD_BITS
    half_a, half_b = plan.halves()
    found: list[tuple[np.ndarray, ...]] = []
    for chunk0 in range(0, len(plan.b_ids), GEMM_CHUNK_COLS):
        chunk1 = min(len(plan.b_ids), chunk0 + GEMM_CHUNK_COLS)
        right = np.empty((chunk1 - chunk0, k1 + 3), np.float32)
        _unpack_stage1(plan.b_words[chunk0:chunk1], plan.w1, right)
        right[:, k1], right[:, k1 + 1] = 1.0, -half_b[chunk0:chunk1]
        right[:, k1 + 2] = plan.rb[chunk0:chunk1]

        def make_kernel(right=right, chunk0=chunk0) -> Callable:
            left_buf = np.empty((GEMM_TILE_ROWS, k1 + 3), np.float32)
            d_buf = np.empty(GEMM_TILE_ROWS * GEMM_TILE_COLS, np.float32)
            mask_buf = np.empty(GEMM_TILE_ROWS * GEMM_TILE_COLS, np.bool_)

            def kernel(r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, ...]:
                shape, s = (r1 - r0, c1 - c0), plan.split(r1, c0, c1)
                left = left_buf[: shape[0]]
                _unpack_stage1(plan.a_words[r0:r1], plan.w1, left)
                left[:, k1], left[:, k1 + 1], left[:, k1 + 2] = -half_a[r0:r1], 1.0, 1.0
                d = d_buf[: shape[0] * shape[1]].reshape(shape)
                lo, hi = c0 - chunk0, c1 - chunk0
                if s:
                    np.matmul(left, right[lo:lo + s].T, out=d[:, :s])
                if s < shape[1]:
                    left[:, k1] += plan.ra[r0:r1]
                    left[:, k1 + 2] = 0.0
                    np.matmul(left, right[lo + s:hi].T, out=d[:, s:])
                mask = mask_buf[: d.size].reshape(shape)
                np.greater_equal(d, -GEMM_SLACK, out=mask)
                flat = np.flatnonzero(mask)
                return r0 + flat // shape[1], c0 + flat % shape[1]

            return kernel

        tasks = _tiles(len(plan.a_ids), chunk0, chunk1, GEMM_TILE_ROWS, GEMM_TILE_COLS)
        found += _run_tiles(plan, tasks, make_kernel, n_threads)
    return found
