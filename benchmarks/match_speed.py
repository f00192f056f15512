"""`linkage bench match`: speed of all-pairs Dice candidate generation, ours against anonlink.

Four contenders run round-robin in one invocation, ``--repeats`` rounds, on the same encodings:

- ours: ``dice_candidates`` with every core (Python threads);
- ours, 1 thread;
- anonlink in this process: ``find_candidate_pairs`` with ``dice_coefficient_accelerated``;
- anonlink over 2 pre-forked processes, the left side split in half and the results merged (what
  ``anonlink.concurrency.split_to_chunks`` + ``process_chunk`` do).

Input conversion (bitarrays for anonlink, ``BitMatrix`` for us) is not timed. Ratios are taken per
round (anonlink's time / ours in the same round), then the median over rounds, because absolute
rates on a shared machine drift between rounds more than within one. The report names the BLAS
library and kernel threadpoolctl sees and the ``OPENBLAS_*`` variables that choose it; this code
never sets them.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_info

from linkage_service.core.bitmatrix import from_packed
from linkage_service.core.candidates import CandidatePairs, sorted_candidates
from linkage_service.core.dice import dice_candidates, fastest_method

from .bench_data import febrl_encodings
from .reporting import emit, progress_log

__all__ = ["make_benchmark_encodings", "match_command", "run_match_benchmark"]

N_BITS = 1024
DENSITY = 0.28  # mean share of set bits in a CLK-like 1024-bit encoding
DENSITY_SD = 0.035  # per-record spread of that share (real encodings vary with field lengths)
PLANTED_COPIES = 5000
# Each planted copy flips every bit with its own probability drawn from [0, MAX_FLIP): about 85%
# of the copies then keep Dice >= 0.8 with their original, as true links do in FEBRL4-based CLKs.
MAX_FLIP = 0.145
ANONLINK_PROCESSES = 2
DATA_KINDS = ("febrl", "noisy-copies", "random")
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FOREIGN_LOAD_WARNING = 0.05


def make_benchmark_encodings(
    n: int, seed: int, kind: str = "febrl"
) -> tuple[np.ndarray, np.ndarray]:
    """Two sides of ``n`` packed 1024-bit encodings each: ``np.uint8``, shape ``(n, 128)``.

    ``febrl``: FEBRL4 scaled to ``n`` and encoded by our encoder (``benchmarks.bench_data``).
    ``noisy-copies``: random rows at ~28% density; ``min(5000, n // 2)`` rows of the right side are
    noisy copies of left rows, and the right side is shuffled. ``random``: no copies at all.
    """
    if kind == "febrl":
        return febrl_encodings(n, seed)
    rng = np.random.default_rng(seed)

    def rows(count: int) -> np.ndarray:
        density = np.clip(rng.normal(DENSITY, DENSITY_SD, count), 0.05, 0.95)
        return rng.random((count, N_BITS)) < density[:, None]

    bits_a = rows(n)
    copies = min(PLANTED_COPIES, n // 2) if kind == "noisy-copies" else 0
    source = rng.choice(n, size=copies, replace=False)
    flips = rng.random((copies, N_BITS)) < rng.uniform(0, MAX_FLIP, copies)[:, None]
    bits_b = rng.permutation(np.concatenate([bits_a[source] ^ flips, rows(n - copies)]))
    return np.packbits(bits_a, axis=1), np.packbits(bits_b, axis=1)


# --- anonlink, in this process and in a pool -------------------------------------------------

_pool_data: dict[str, Any] = {}


def _to_bitarrays(packed: np.ndarray) -> list:
    from bitarray import bitarray

    out = []
    for row in packed:
        bits = bitarray(endian="big")
        bits.frombytes(row.tobytes())
        out.append(bits)
    return out


def _pool_init(packed_a: np.ndarray, packed_b: np.ndarray) -> None:
    _pool_data["a"], _pool_data["b"] = _to_bitarrays(packed_a), _to_bitarrays(packed_b)


def _anonlink_chunk(chunk: list[dict[str, Any]], threshold: float) -> tuple[np.ndarray, ...]:
    from anonlink.concurrency import process_chunk
    from anonlink.similarities import dice_coefficient_accelerated

    (a0, a1), (b0, b1) = chunk[0]["range"], chunk[1]["range"]
    datasets = (_pool_data["a"][a0:a1], _pool_data["b"][b0:b1])
    sims, _, (left, right) = process_chunk(chunk, datasets, dice_coefficient_accelerated, threshold)
    return (
        np.frombuffer(sims, np.float64),
        np.frombuffer(left, np.uint32),
        np.frombuffer(right, np.uint32),
    )


def _anonlink_single(fa: list, fb: list, threshold: float) -> CandidatePairs:
    from anonlink.candidate_generation import find_candidate_pairs
    from anonlink.similarities import dice_coefficient_accelerated

    sims, _, (left, right) = find_candidate_pairs((fa, fb), dice_coefficient_accelerated, threshold)
    return _as_pairs(
        np.frombuffer(sims, np.float64),
        np.frombuffer(left, np.uint32),
        np.frombuffer(right, np.uint32),
    )


def _as_pairs(scores: np.ndarray, left: np.ndarray, right: np.ndarray) -> CandidatePairs:
    """anonlink's arrays, already in (-score, left, right) order, as ``CandidatePairs``."""
    return CandidatePairs(
        scores=scores.astype(np.float64), left=left.astype(np.int64), right=right.astype(np.int64)
    )


def _halves(n_a: int, n_b: int) -> list[list[dict[str, Any]]]:
    cut = n_a // 2
    return [
        [{"datasetIndex": 0, "range": [lo, hi]}, {"datasetIndex": 1, "range": [0, n_b]}]
        for lo, hi in ((0, cut), (cut, n_a))
        if hi > lo
    ]


# --- measurement -------------------------------------------------------------------------------


def _blas_report() -> dict[str, Any]:
    keys = ("internal_api", "architecture", "num_threads", "version")
    return {
        "libraries": [
            {k: lib.get(k) for k in keys}
            for lib in threadpool_info()
            if lib.get("user_api") == "blas"
        ],
        **{name: os.environ.get(name) for name in OPENBLAS_VARIABLES},
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class _ForeignLoad:
    """Share of all cores that other processes kept busy while we measured (Linux), else None.

    On a shared machine a neighbour's job on one core halves every two-core figure; this says
    whether a run was disturbed.
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.start = pids, time.perf_counter()
        self.busy, self.own = _machine_busy_seconds(), self._own_seconds()

    def _own_seconds(self) -> float | None:
        try:
            stats = [
                Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split() for pid in self.pids
            ]
        except OSError:
            return None
        return sum(int(s[11]) + int(s[12]) for s in stats) / os.sysconf("SC_CLK_TCK")

    def share(self) -> float | None:
        busy, own = _machine_busy_seconds(), self._own_seconds()
        if None in (busy, own, self.busy, self.own):
            return None
        wall = (time.perf_counter() - self.start) * (os.cpu_count() or 1)
        foreign = (busy - self.busy) - (own - self.own)  # type: ignore[operator]
        return round(max(0.0, foreign / wall), 3)


def _machine_busy_seconds() -> float | None:
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def _timed(run: Callable[[], CandidatePairs]) -> tuple[float, CandidatePairs]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def run_match_benchmark(
    n: int,
    threshold: float,
    repeats: int,
    data: str,
    seed: int,
    method: str = "auto",
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Measure the four contenders; return the report (see ``match_command``)."""
    packed_a, packed_b = make_benchmark_encodings(n, seed, data)
    a, b = from_packed(packed_a, N_BITS), from_packed(packed_b, N_BITS)
    fa, fb = _to_bitarrays(packed_a), _to_bitarrays(packed_b)
    cores = os.cpu_count() or 1
    resolved = fastest_method() if method == "auto" else method
    context = multiprocessing.get_context("fork")
    with context.Pool(ANONLINK_PROCESSES, _pool_init, (packed_a, packed_b)) as pool:

        def anonlink_2proc() -> CandidatePairs:
            parts = pool.starmap(_anonlink_chunk, [(c, threshold) for c in _halves(a.n, b.n)])
            return sorted_candidates(*(np.concatenate(col) for col in zip(*parts, strict=True)))

        contenders: dict[str, Callable[[], CandidatePairs]] = {
            "ours": lambda: dice_candidates(a, b, threshold, threads=cores, method=resolved),
            "ours_1thread": lambda: dice_candidates(a, b, threshold, threads=1, method=resolved),
            "anonlink": lambda: _anonlink_single(fa, fb, threshold),
            "anonlink_2proc": anonlink_2proc,
        }
        results = {name: run() for name, run in contenders.items()}  # warm-up, not timed
        times: dict[str, list[float]] = {name: [] for name in contenders}
        pids = [os.getpid(), *(p.pid for p in pool._pool)]  # type: ignore[attr-defined]
        meter = _ForeignLoad(pids)
        for round_ in range(repeats):
            for name, run in contenders.items():
                seconds, results[name] = _timed(run)
                times[name].append(seconds)
            log(
                f"round {round_ + 1}/{repeats}: "
                + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items())
            )
        foreign = meter.share()
    report = _report(n, threshold, repeats, data, seed, resolved, cores, times, results)
    return {**report, "foreign_cpu_share": foreign}


def _report(
    n: int,
    threshold: float,
    repeats: int,
    data: str,
    seed: int,
    method: str,
    cores: int,
    times: dict[str, list[float]],
    results: dict[str, CandidatePairs],
) -> dict[str, Any]:
    pairs = n * n

    def rate(name: str) -> float:
        return round(pairs / statistics.median(times[name]), 1)

    def ratio(slow: str, fast: str) -> float:
        return round(
            statistics.median(s / f for s, f in zip(times[slow], times[fast], strict=True)), 3
        )

    reference = results["anonlink"]
    return {
        "n": n,
        "threshold": threshold,
        "repeats": repeats,
        "data": data,
        "seed": seed,
        "n_bits": N_BITS,
        "comparisons": pairs,
        "cpu_count": cores,
        "cpu": _cpu_model(),
        "method": method,
        "ours_comparisons_per_s": rate("ours"),
        "ours_1thread_comparisons_per_s": rate("ours_1thread"),
        "anonlink_comparisons_per_s": rate("anonlink"),
        "anonlink_2proc_comparisons_per_s": rate("anonlink_2proc"),
        "ratio": ratio("anonlink", "ours"),
        "ratio_1thread": ratio("anonlink", "ours_1thread"),
        "ratio_vs_anonlink_2proc": ratio("anonlink_2proc", "ours"),
        "identical": all(r.same_as(reference) for r in results.values()),
        "candidates": len(reference),
        "seconds": {name: [round(s, 4) for s in ts] for name, ts in times.items()},
        "blas": _blas_report(),
    }


def print_table(report: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"Dice candidates, {report['n']:,} x {report['n']:,} "
        f"({report['data']}), t={report['threshold']}, "
        f"median of {report['repeats']}"
    )
    for column in ("contender", "M comparisons/s", "anonlink time / this (same round)"):
        table.add_column(column, justify="right" if column != "contender" else "left")
    rows = [
        (f"ours ({report['method']}, {report['cpu_count']} threads)", "ours", report["ratio"]),
        (f"ours ({report['method']}, 1 thread)", "ours_1thread", report["ratio_1thread"]),
        ("anonlink, 1 process", "anonlink", 1.0),
        (
            f"anonlink, {ANONLINK_PROCESSES} processes",
            "anonlink_2proc",
            round(report["ratio"] / report["ratio_vs_anonlink_2proc"], 3),
        ),
    ]
    for label, key, ratio in rows:
        table.add_row(label, f"{report[key + '_comparisons_per_s'] / 1e6:.0f}", f"{ratio:.2f}x")
    console.print(table)
    blas = report["blas"]
    kernels = (
        ", ".join(
            f"{b['internal_api']} {b['version']} {b['architecture']}" for b in blas["libraries"]
        )
        or "none"
    )
    console.print(
        f"identical results: {report['identical']} ({report['candidates']:,} candidates)"
        f"; ours vs anonlink over {ANONLINK_PROCESSES} processes: "
        f"{report['ratio_vs_anonlink_2proc']:.2f}x"
    )
    if (report.get("foreign_cpu_share") or 0) > FOREIGN_LOAD_WARNING:
        console.print(
            f"[yellow]other processes used {report['foreign_cpu_share']:.0%} of the cores "
            "during the measurement: the figures are disturbed[/yellow]"
        )
    console.print(
        f"CPU: {report['cpu']}; BLAS: {kernels}; "
        + ", ".join(f"{name}={blas[name]}" for name in OPENBLAS_VARIABLES)
    )


@click.command("match")
@click.option(
    "--n",
    "n",
    default=10000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Records on each side.",
)
@click.option(
    "--threshold", default=0.8, show_default=True, type=click.FloatRange(0, 1, min_open=True)
)
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--data",
    type=click.Choice(DATA_KINDS),
    default=DATA_KINDS[0],
    show_default=True,
    help="febrl: FEBRL4 scaled to N and encoded with our encoder; "
    "noisy-copies: half the right side are noisy copies of left rows; "
    "random: independent rows.",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--method",
    type=click.Choice(("auto", "gemm", "popcount")),
    default="auto",
    show_default=True,
    help="Our stage-1 formulation.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object only.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
def match_command(
    n: int,
    threshold: float,
    repeats: int,
    data: str,
    seed: int,
    method: str,
    as_json: bool,
    out: Path | None,
) -> None:
    """Dice candidate generation speed: ours against anonlink, same data, same rounds."""
    try:
        import anonlink  # noqa: F401
        import bitarray  # noqa: F401
    except ImportError as e:
        raise click.ClickException(
            f"anonlink and bitarray are needed for this benchmark ({e}); run `make bench`"
        ) from e
    report = run_match_benchmark(
        n, threshold, repeats, data, seed, method, log=progress_log(as_json)
    )
    emit(report, as_json, out, print_table)
