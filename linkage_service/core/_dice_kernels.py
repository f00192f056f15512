"""Stage 1 of ``dice.dice_candidates``: the tiled, threaded superset filters and the exact check.

Private to ``dice``. Everything is in "sorted" coordinates: both sides' rows sorted by the popcount
of the words after the first ``w1`` (their "rest"), ascending.

Why stage 1 is a superset: ``|a & b| = uv1 + uv_rest`` where ``uv1`` counts common bits in the
first ``w1`` words and ``uv_rest <= min(ra, rb)``. A pair is kept when ``uv1 + r >= t/2 (pa + pb)``
(less a slack) with ``r`` either ``ra`` or ``rb``: both are upper bounds of ``uv_rest``, so no
passing pair is lost. Which one is folded in only changes how many extra pairs survive; in each
tile the sorted order splits the columns into those whose ``rb`` is below the tile's largest ``ra``
(fold ``rb``) and the rest (fold ``ra``), which makes ``r`` nearly ``min(ra, rb)``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from linkage_service.core.bitmatrix import WORD_BITS

# Largest tiles (rows of the left side x columns of the right side), measured on a 2-core Zen 4.
# Bigger tiles mean fewer ufunc calls per pair, so less GIL traffic between the threads; from
# 32 x 4000 up to 256 x 4000 the rate moved by less than the run-to-run noise (~5%).
# Rows of fewer than ~2730 (8192 / 3) elements make numpy copy broadcast operands through its
# ufunc buffer: the AND then costs 0.5 instead of 0.19 ns, so column spans stay above 3000
# whenever the right side is that large.
POPCOUNT_TILE_ROWS = 64
POPCOUNT_TILE_COLS = 6000
GEMM_TILE_ROWS = 512
GEMM_TILE_COLS = 4096
# Right-side rows unpacked to float32 at a time for the GEMM (shared by the threads).
GEMM_CHUNK_COLS = 16384
# Tasks per thread to aim for, so that one slow tile does not leave a core idle at the end.
TASKS_PER_THREAD = 4
MIN_TILE_ROWS = 8
# float32 slack below zero for the folded GEMM output. Its rounding error is below 0.07 for 1024-bit
# filters (at most ~500 roundings of ~1e-4 once the non-integer threshold columns enter the sum).
GEMM_SLACK = 0.5
# Partial sums of at most 3 words' popcounts (<= 192) fit in uint8.
WORDS_PER_UINT8_SUM = 3
# Survivors per exact-check call: its ~10 us overhead would dominate at a few dozen per tile.
EXACT_BATCH = 1 << 16

Part = tuple[np.ndarray, np.ndarray, np.ndarray]  # scores, left ids, right ids
Task = tuple[int, int, int, int]  # r0, r1, c0, c1 (sorted coordinates)


@dataclass(frozen=True)
class Plan:
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
    ra: np.ndarray  # int64 rest popcounts, ascending
    rb: np.ndarray
    max_delta: np.ndarray  # int64 anonlink popcount-difference bound per left row

    def exact(self, rows: np.ndarray, cols: np.ndarray) -> Part:
        """anonlink's rule on survivors; (scores, left ids, right ids) of the pairs it keeps."""
        common = np.take(self.a_words, rows, axis=0)
        common &= np.take(self.b_words, cols, axis=0)
        uv = np.bitwise_count(common).sum(axis=1, dtype=np.int64)
        pa, pb = self.pa[rows], self.pb[cols]
        scores = (2 * uv).astype(np.float64) / (pa + pb).astype(np.float64)
        keep = (np.abs(pa - pb) <= self.max_delta[rows]) & (scores >= self.threshold)
        return scores[keep], self.a_ids[rows[keep]], self.b_ids[cols[keep]]

    def split(self, r1: int, c0: int, c1: int) -> int:
        """Columns in [c0, c1) whose rest is below the tile's largest left rest: fold rb there."""
        return int(np.clip(np.searchsorted(self.rb, self.ra[r1 - 1]), c0, c1)) - c0

    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """``t/2 * p`` per side: a pair can pass only if ``uv >= half_a + half_b``."""
        return 0.5 * self.threshold * self.pa, 0.5 * self.threshold * self.pb


def rests(words: np.ndarray, w1: int) -> np.ndarray:
    """Popcount of the words after the first ``w1`` of each row, int64."""
    return np.bitwise_count(words[:, w1:]).sum(axis=1, dtype=np.int64)


def _spans(n: int, largest: int) -> list[tuple[int, int]]:
    """[0, n) cut into equal spans of at most ``largest``."""
    size = math.ceil(n / math.ceil(n / largest))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def tiles(
    n_rows: int, c_start: int, c_stop: int, rows: int, cols: int, n_threads: int
) -> list[Task]:
    """Tasks, column span outermost so one right-side span stays in cache across row tiles."""
    col_spans = [(c_start + c0, c_start + c1) for c0, c1 in _spans(c_stop - c_start, cols)]
    wanted = math.ceil(n_rows * len(col_spans) / (TASKS_PER_THREAD * n_threads))
    row_spans = _spans(n_rows, min(rows, max(MIN_TILE_ROWS, wanted)))
    return [(r0, r1, c0, c1) for c0, c1 in col_spans for r0, r1 in row_spans]


def run_tiles(plan: Plan, tasks: list[Task], make_kernel: Callable, n_threads: int) -> list[Part]:
    """Run ``make_kernel()(*task) -> (rows, cols)`` over the tasks; exact-check the survivors."""
    queue, lock = iter(tasks), threading.Lock()

    def worker() -> list[Part]:
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
                rows, cols = (np.concatenate(c) for c in zip(*batch, strict=True))
                found.append(plan.exact(rows, cols))
                batch, pending = [], 0
            if task is None:
                return found

    n_threads = min(n_threads, len(tasks))
    if n_threads <= 1:
        return worker()
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        futures = [pool.submit(worker) for _ in range(n_threads)]
        return [part for f in futures for part in f.result()]


def run_popcount(plan: Plan, n_threads: int) -> list[Part]:
    """Stage 1 as uint64 AND + popcount on word-major copies of the first ``w1`` words.

    Integer form of the filter: keep when ``uv1 + r >= floor(half_a) + floor(half_b) - 1``. Both
    sides are integers and each floor is at most its half, so every pair with
    ``uv >= half_a + half_b`` (less double rounding, far below 1) is kept.
    """
    offset = plan.n_bits + 1  # keeps every accumulator and threshold non-negative
    acc_type = np.uint16 if 2 * plan.n_bits + 1 <= np.iinfo(np.uint16).max else np.uint32
    floor_a, floor_b = (np.floor(h).astype(np.int64) for h in plan.halves())
    start_rb = (offset - floor_b + plan.rb).astype(acc_type)  # the right row's rest folded in
    start_0 = (offset - floor_b).astype(acc_type)
    need_rb = (offset + floor_a - 1).astype(acc_type)
    need_ra = (offset + floor_a - 1 - plan.ra).astype(acc_type)  # the left row's rest folded in
    a_wm = np.ascontiguousarray(plan.a_words[:, : plan.w1].T)
    b_wm = np.ascontiguousarray(plan.b_words[:, : plan.w1].T)
    groups = [
        range(w, min(w + WORDS_PER_UINT8_SUM, plan.w1))
        for w in range(0, plan.w1, WORDS_PER_UINT8_SUM)
    ]

    def make_kernel() -> Callable:
        size = POPCOUNT_TILE_ROWS * POPCOUNT_TILE_COLS
        bufs = [np.empty(size, dt) for dt in (np.uint64, np.uint8, np.uint8, acc_type, np.bool_)]

        def kernel(r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
            shape, s = (r1 - r0, c1 - c0), plan.split(r1, c0, c1)
            anded, cnt, part, acc, mask = (b[: shape[0] * shape[1]].reshape(shape) for b in bufs)
            for g, group in enumerate(groups):
                for k, w in enumerate(group):
                    np.bitwise_and(a_wm[w, r0:r1, None], b_wm[w, None, c0:c1], out=anded)
                    np.bitwise_count(anded, out=part if k == 0 else cnt)
                    if k:
                        np.add(part, cnt, out=part)
                if g == 0:  # the accumulator starts at the columns' folded terms
                    np.add(part[:, :s], start_rb[c0 : c0 + s], out=acc[:, :s])
                    np.add(part[:, s:], start_0[c0 + s : c1], out=acc[:, s:])
                else:
                    np.add(acc, part, out=acc)
            np.greater_equal(acc[:, :s], need_rb[r0:r1, None], out=mask[:, :s])
            np.greater_equal(acc[:, s:], need_ra[r0:r1, None], out=mask[:, s:])
            flat = np.flatnonzero(mask)
            return r0 + flat // shape[1], c0 + flat % shape[1]

        return kernel

    tasks = tiles(
        len(plan.a_ids), 0, len(plan.b_ids), POPCOUNT_TILE_ROWS, POPCOUNT_TILE_COLS, n_threads
    )
    return run_tiles(plan, tasks, make_kernel, n_threads)


def _unpack(words: np.ndarray, w1: int, out: np.ndarray) -> None:
    """Bits of the first ``w1`` words of each row, as float32, into ``out[:, :64*w1]``."""
    out[:, : w1 * WORD_BITS] = np.unpackbits(words[:, :w1].view(np.uint8), axis=1)


def _gemm_chunk(plan: Plan, chunk0: int, chunk1: int) -> np.ndarray:
    """Right operand ``[bits, 1, -half_b, rb]`` (float32) of sorted columns [chunk0, chunk1)."""
    k1 = plan.w1 * WORD_BITS
    right = np.empty((chunk1 - chunk0, k1 + 3), np.float32)
    _unpack(plan.b_words[chunk0:chunk1], plan.w1, right)
    right[:, k1], right[:, k1 + 1] = 1.0, -plan.halves()[1][chunk0:chunk1]
    right[:, k1 + 2] = plan.rb[chunk0:chunk1]
    return right


def run_gemm(plan: Plan, n_threads: int) -> list[Part]:
    """Stage 1 as a float32 GEMM per tile: ``D = uv1 + r - half_a - half_b``, kept if >= -slack.

    Left rows are ``[bits, -half_a, 1, 1]`` against the columns that fold ``rb`` and
    ``[bits, ra - half_a, 1, 0]`` against those that fold ``ra``. BLAS must be single-threaded.
    """
    k1 = plan.w1 * WORD_BITS
    half_a = plan.halves()[0]
    found: list[Part] = []
    for chunk0, chunk1 in _spans(len(plan.b_ids), GEMM_CHUNK_COLS):
        right = _gemm_chunk(plan, chunk0, chunk1)

        def make_kernel(right: np.ndarray = right, chunk0: int = chunk0) -> Callable:
            left_buf = np.empty((GEMM_TILE_ROWS, k1 + 3), np.float32)
            d_buf = np.empty(GEMM_TILE_ROWS * GEMM_TILE_COLS, np.float32)
            mask_buf = np.empty(GEMM_TILE_ROWS * GEMM_TILE_COLS, np.bool_)

            def kernel(r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
                shape, s = (r1 - r0, c1 - c0), plan.split(r1, c0, c1)
                left, lo = left_buf[: shape[0]], c0 - chunk0
                _unpack(plan.a_words[r0:r1], plan.w1, left)
                left[:, k1], left[:, k1 + 1], left[:, k1 + 2] = -half_a[r0:r1], 1.0, 1.0
                d = d_buf[: shape[0] * shape[1]].reshape(shape)
                if s:
                    np.matmul(left, right[lo : lo + s].T, out=d[:, :s])
                if s < shape[1]:
                    left[:, k1] += plan.ra[r0:r1]
                    left[:, k1 + 2] = 0.0
                    np.matmul(left, right[lo + s : lo + shape[1]].T, out=d[:, s:])
                mask = mask_buf[: d.size].reshape(shape)
                np.greater_equal(d, -GEMM_SLACK, out=mask)
                flat = np.flatnonzero(mask)
                return r0 + flat // shape[1], c0 + flat % shape[1]

            return kernel

        tasks = tiles(len(plan.a_ids), chunk0, chunk1, GEMM_TILE_ROWS, GEMM_TILE_COLS, n_threads)
        found += run_tiles(plan, tasks, make_kernel, n_threads)
    return found
