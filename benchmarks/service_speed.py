"""`linkage bench service`: ingest rate, rebuild time and submission-to-alert latency.

Everything runs over real gRPC on loopback with mutual TLS (a local CA made for the run), against
an in-process server from ``create_server`` on a temporary data directory. Client calls run in
threads of the same process, so client and server share one interpreter (and its GIL).

Data: the synthetic child population, encoded with ``children-v1`` and a fresh secret, in *blocks*
of at most 50,000 children (about 110,000 agency records). Block ``b`` is its own population (seed
``seed + b``) whose NHS numbers start ``999b``: every number stays in the range reserved for test
data, and no two blocks share a child or a number. Record references get the prefix ``b<b>-``.

1. **Ingest** (fresh data directory): ``2 x --ingest-batches`` batches of ``--batch`` records,
   each one agency's, timed from the first request message the client hands to gRPC until the
   receipt arrives (the service sends it after the SQLite commit). The client's building of the
   chunk messages is inside that time, as in ``linkage submit``. First ``idle``: the matcher has
   finished all earlier batches before each batch is sent (the pure receipt path); then ``busy``:
   the batches are sent back to back while the matcher works through them (what an agency sees
   when the service is busy). ``match_seconds`` is how long the matcher then took for each idle
   batch against everything ingested before it.
2. **Standing index** per ``--standing`` size N: the first N + probes records of the pool in
   (block, household) order, minus the held-out probe records (4); a larger size starts from a
   copy of the smaller one's store and adds the next records. The records are added in *groups*,
   one per block (a larger size's first group is the rest of the block the smaller size cut),
   one batch per agency each. The smallest size's first group is submitted over gRPC and
   matched by the running service. All-pairs matching of 1M records (about 5e11 Dice
   comparisons, plus re-solving the regions they join) takes far longer than a benchmark run, so
   every further group is written through the service's own intake (``read_batch``) and store
   (``SqliteStore.submit``) and matched by the service's ``Matcher`` with an index of that group
   only: records of different groups are never compared. Groups are different households (and
   blocks different children with disjoint NHS numbers), so no true link is lost but in the one
   household a size boundary may cut; chance candidates between children of different groups
   are, so the components (the regions re-solved on every submission) stay within one group.
3. **Rebuild**: ``create_server`` on the standing directory, ``--repeats`` times (warm page
   cache): reopening the store and restoring the index; the server's own ``rebuild_seconds`` and
   the whole call are reported.
4. **Latency**: a coordinator watches alerts; single-record batches (one per SubmitBatch) are sent
   one at a time, each the held-out record of a child whose record in another agency is in the
   standing index with Dice at or above the match threshold (so an alert version must follow).
   Latency is from the start of SubmitBatch to the arrival, on the watch stream, of the alert
   event naming that record. Channels are connected beforehand; the matcher is idle before each
   probe; the first ``WARMUP_PROBES`` are not counted; probing stops after ``--latency-budget``
   seconds (the probe under way is finished and counted), because a probe that joins a large
   component waits for the matcher to re-solve all of it. Probes are also reported by the size of
   the component their record joined. For comparison: ``dice_scan_ms``, the matcher's Dice step
   alone (``similar_pairs``, one record against all N).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import math
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click
import grpc
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from clients.client import Identity, batch_requests, connect, idempotency_key, submit_batch
from clients.encoding.encode_file import encode_csv
from clients.encoding.secret import Secret
from linkage_service.core._similar_pairs import similar_pairs
from linkage_service.core.bitmatrix import from_packed
from linkage_service.security.certs import init_ca, issue
from linkage_service.service.config import Limits, ServiceConfig, TlsPaths
from linkage_service.service.intake import Expected, read_batch
from linkage_service.service.matcher import Matcher
from linkage_service.service.server import LinkageServer, create_server
from linkage_service.service.servicers import AlertBell
from linkage_service.store import DB_NAME, SqliteStore
from linkage_service.wire.encoded_file import EncodedBatch
from linkage_service.wire.schema import LinkageSchema, load_schema
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

from .match_speed import _blas_report, _cpu_model, _ForeignLoad
from .population import AGENCIES, PopulationConfig, generate_population
from .reporting import emit, progress_log

__all__ = ["run_service_benchmark", "service_command"]

SCHEMA = "children-v1"
# One block is one population; valid_nhs_numbers allows at most half of a prefix's numbers, and
# the prefixes 9990-9999 (ten blocks) keep every number in the 999 test range.
BLOCK_CHILDREN = 50_000
MAX_BLOCKS = 10
RECORDS_PER_CHILD = 2.0  # planning figure; 50,000 children give about 2.2 records each
WARMUP_PROBES = 3
DICE_SCAN_REPEATS = 20
COORDINATOR = "mash-1"
CALLERS = {**{a: f"agency:{a}" for a in AGENCIES}, COORDINATOR: "coordinator"}
MATCH_TIMEOUT = 3600.0
DELIVERY_TIMEOUT = 5.0  # from the matcher going idle to the alert event on the stream
# probes whose record lands in a component above this size are reported apart (re-solving a
# region of that size is the dominant cost; the index solves regions this big with every thread)
LARGE_COMPONENT = 1000
INGEST_TARGET = 200_000  # records/s, from the issue
LATENCY_TARGET_MS = 50.0  # p99 at 1M, from the issue
GRACE = 5.0
NOTE = (
    "Ingest: records/s of one SubmitBatch of `batch` records, first request message to "
    "receipt (sent after the SQLite commit), client message building included; 'idle': the "
    "matcher had finished every earlier batch; 'busy': sent back to back while the matcher "
    "matched earlier batches; 'without_grpc': the service's intake (read_batch) and "
    "SqliteStore.submit alone on the idle batches. Standing index of N: synthetic population "
    "in blocks of 50,000 children (own seed, NHS numbers 999<b>...), added in groups (a "
    "block, or the rest of the block a smaller size cut; a larger size starts from a copy of "
    "the smaller size's store), one batch per agency: the first group submitted over gRPC and "
    "matched by the running service, every further group written through read_batch + "
    "SqliteStore.submit and matched by the service's Matcher with an index of that group "
    "only, so records of different groups (different households) were never compared: "
    "all-pairs matching of 1M records would take far longer than the run. Components "
    "therefore stay within a group; with all-pairs matching they could only be larger. "
    "Rebuild: create_server on that store, warm page cache. Latency: one record per "
    "SubmitBatch, the held-out record of a child whose other-agency record is standing with "
    "Dice >= match, from the start of SubmitBatch to that record's alert event on a "
    "coordinator's WatchAlerts stream; matcher idle before each probe; probing stops after "
    "latency_budget_seconds per size; probes are also split by the size of the saved "
    "component their record joined (what the matcher re-solved); dice_scan_ms: the matcher's "
    "Dice step alone for one record against all N."
)
AGENCY_ORDER = "agency_order"  # the store's meta key for the index's agency order


# --- data ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pool:
    """Encoded records of every block. ``rows``: one row per record with its ``block``,
    ``agency`` (index into AGENCIES), ``row`` (in its batch), ``household`` and ``child``
    (global ints), in (block, household) order."""

    batches: dict[tuple[int, int], EncodedBatch]
    rows: pd.DataFrame

    def groups_of(self, rows: pd.DataFrame) -> list[dict[int, EncodedBatch]]:
        """The records of ``rows`` per block: one batch per agency index, in batch order."""
        out = []
        for block, part in rows.groupby("block", sort=True):
            group = {}
            for agency, mine in part.groupby("agency", sort=True):
                idx = np.sort(mine["row"].to_numpy())
                group[int(agency)] = _subset(self.batches[(int(block), int(agency))], idx)
            out.append(group)
        return out

    @property
    def filter_bits(self) -> int:
        return next(iter(self.batches.values())).filter_bits

    def bits(self, block: int, agency: int, row: int) -> np.ndarray:
        return self.batches[(block, agency)].bits[row]


def _subset(batch: EncodedBatch, idx: np.ndarray) -> EncodedBatch:
    return dataclasses.replace(
        batch,
        record_ids=batch.record_ids[idx],
        bits=np.ascontiguousarray(batch.bits[idx]),
        identifiers=np.ascontiguousarray(batch.identifiers[idx]),
        report={},
    )


def _concat(batches: Sequence[EncodedBatch]) -> EncodedBatch:
    return dataclasses.replace(
        batches[0],
        record_ids=np.concatenate([b.record_ids for b in batches]),
        bits=np.concatenate([b.bits for b in batches]),
        identifiers=np.concatenate([b.identifiers for b in batches]),
        report={},
    )


def make_pool(
    needed: int, seed: int, directory: Path, log: Callable[[str], None] = lambda m: None
) -> Pool:
    """At least ``needed`` encoded records, in blocks (module docstring)."""
    schema = load_schema(SCHEMA)
    secret = Secret(secrets.token_bytes(32))
    batches: dict[tuple[int, int], EncodedBatch] = {}
    frames = []
    have = 0
    block = 0
    while have < needed:
        if block == MAX_BLOCKS:
            raise click.ClickException(
                f"{needed:,} records need more than {MAX_BLOCKS} blocks of {BLOCK_CHILDREN:,} "
                f"children; the NHS test range allows no more ({have:,} records made)"
            )
        children = min(BLOCK_CHILDREN, max(200, math.ceil((needed - have) / RECORDS_PER_CHILD)))
        population = generate_population(
            children, seed + block, PopulationConfig(nhs_test_prefix=f"999{block}")
        )
        household = dict(
            zip(population.children["child_id"], population.children["household_id"], strict=True)
        )
        child_codes = {c: i for i, c in enumerate(population.children["child_id"])}
        house_codes = {
            h: i for i, h in enumerate(dict.fromkeys(population.children["household_id"]))
        }
        prefix = f"b{block}-"
        for g, agency in enumerate(AGENCIES):
            table = population.agencies[agency].copy()
            if table.empty:
                continue
            table["record_id"] = prefix + table["record_id"].astype(str)
            path = directory / f"{block}-{agency}.csv"
            table.to_csv(path, index=False, encoding="utf-8")
            batch = encode_csv(path, schema, secret, agency)
            path.unlink()
            original = [r[len(prefix) :] for r in batch.record_ids.tolist()]
            owners = [population.child_of[(agency, r)] for r in original]
            batches[(block, g)] = batch
            frames.append(
                pd.DataFrame(
                    {
                        "block": np.int64(block),
                        "agency": np.int64(g),
                        "row": np.arange(batch.record_count, dtype=np.int64),
                        "household": [
                            block * 10_000_000 + house_codes[household[c]] for c in owners
                        ],
                        "child": [block * 10_000_000 + child_codes[c] for c in owners],
                    }
                )
            )
            have += batch.record_count
        log(f"block {block}: {children:,} children, {have:,} encoded records so far")
        block += 1
    rows = pd.concat(frames, ignore_index=True)
    rows = rows.sort_values(["block", "household", "agency", "row"], kind="stable")
    return Pool(batches, rows.reset_index(drop=True))


def choose_probes(
    pool: Pool,
    start: int,
    stop: int,
    held: set[int],
    count: int,
    match: float,
    rng: np.random.Generator,
) -> list[int]:
    """``count`` pool row positions in [start, stop) to hold out as probes: each the only record
    of its child in its agency among rows [0, stop), whose child has a record of another agency
    there, not held out, with Dice >= ``match`` (so submitting it must change an alert)."""
    rows = pool.rows.iloc[:stop]
    members = rows.iloc[max(0, start - 1000) :].groupby("child").indices
    offset = max(0, start - 1000)
    block, agency = rows["block"].to_numpy(), rows["agency"].to_numpy()
    row, child = rows["row"].to_numpy(), rows["child"].to_numpy()
    chosen: list[int] = []
    used: set[int] = set()
    for pos in (start + rng.permutation(stop - start)).tolist():
        if len(chosen) == count:
            break
        c = int(child[pos])
        if c in used:
            continue
        mine = members[c] + offset
        if (agency[mine] == agency[pos]).sum() != 1:
            continue
        own = pool.bits(int(block[pos]), int(agency[pos]), int(row[pos]))
        best = 0.0
        for other in mine[agency[mine] != agency[pos]].tolist():
            if other in held:
                continue
            theirs = pool.bits(int(block[other]), int(agency[other]), int(row[other]))
            common = int(np.bitwise_count(own & theirs).sum())
            total = int(np.bitwise_count(own).sum()) + int(np.bitwise_count(theirs).sum())
            best = max(best, 2 * common / total)
        if best >= match:
            chosen.append(pos)
            used.add(c)
    if len(chosen) < count:
        raise click.ClickException(
            f"only {len(chosen)} of {count} probe records found among {stop - start:,} records"
        )
    return chosen


def _household_end(pool: Pool, position: int) -> int:
    """The first pool row at or after ``position`` that starts a new household."""
    households = pool.rows["household"].to_numpy()
    end = min(position, households.size)
    while 0 < end < households.size and households[end] == households[position - 1]:
        end += 1
    return end


def probe_batches(pool: Pool, positions: Sequence[int]) -> list[EncodedBatch]:
    rows = pool.rows
    return [
        _subset(
            pool.batches[(int(rows["block"].iat[p]), int(rows["agency"].iat[p]))],
            np.array([rows["row"].iat[p]]),
        )
        for p in positions
    ]


def ingest_batches(pool: Pool, count: int, size: int) -> list[EncodedBatch]:
    """``count`` batches of ``size`` records, each one agency's (the agency with the most records
    left), drawn from the pool's blocks in order."""
    per_agency = {
        g: sorted(
            ((int(b), part["row"].to_numpy()) for b, part in rows.groupby("block")),
            key=lambda item: item[0],
        )
        for g, rows in pool.rows.groupby("agency")
    }
    flat = {
        g: [(b, int(r)) for b, rows in parts for r in np.sort(rows).tolist()]
        for g, parts in per_agency.items()
    }
    taken = {g: 0 for g in flat}
    out = []
    for _ in range(count):
        g = max(flat, key=lambda a: len(flat[a]) - taken[a])
        picks = flat[g][taken[g] : taken[g] + size]
        if len(picks) < size:
            raise click.ClickException(f"the pool has too few records for {count} batches")
        taken[g] += size
        parts = []
        for b in dict.fromkeys(b for b, _ in picks):
            idx = np.array([r for bb, r in picks if bb == b])
            parts.append(_subset(pool.batches[(b, int(g))], idx))
        out.append(_concat(parts))
    return out


# --- service plumbing ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pki:
    directory: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        directory.mkdir(parents=True)
        init_ca(directory)
        issue(directory, "server", "localhost", directory, hosts=("localhost", "127.0.0.1"))
        for name, role in CALLERS.items():
            issue(directory, role.partition(":")[0], name, directory)
        return cls(directory)

    def config(self, data_dir: Path) -> ServiceConfig:
        d = self.directory
        return ServiceConfig(
            listen="127.0.0.1:0",
            data_dir=data_dir,
            schema=SCHEMA,
            tls=TlsPaths(d / "server.crt", d / "server.key", d / "ca.crt"),
            callers=dict(CALLERS),
            grace_seconds=GRACE,
        )

    def channel(self, port: int, name: str) -> grpc.Channel:
        stem = f"{CALLERS[name].partition(':')[0]}-{name}"
        d = self.directory
        ch = connect(
            f"localhost:{port}", Identity(d / f"{stem}.crt", d / f"{stem}.key", d / "ca.crt")
        )
        grpc.channel_ready_future(ch).result(timeout=30)  # TLS handshake done before timing
        return ch


def _timed_submit(
    stub: rpc.AgencyServiceStub, batch: EncodedBatch, key: str
) -> tuple[float, pb.BatchReceipt]:
    """Seconds from the first request message handed to gRPC to the receipt."""
    started: list[float] = []

    def requests() -> Iterator[pb.SubmitBatchRequest]:
        for message in batch_requests(batch, key):
            if not started:
                started.append(time.perf_counter())
            yield message

    receipt = stub.SubmitBatch(requests(), timeout=600)
    return time.perf_counter() - started[0], receipt


def _wait_idle(matcher: Matcher, what: str) -> None:
    """Until every committed piece of work is matched; a matching failure (the matcher keeps
    retrying) or MATCH_TIMEOUT ends the benchmark."""
    deadline = time.perf_counter() + MATCH_TIMEOUT
    while not matcher.wait_idle(0.5):
        if matcher.failure is not None:
            raise click.ClickException(f"matching {what} failed: {matcher.failure}")
        if time.perf_counter() > deadline:
            raise click.ClickException(f"matching {what} did not finish in {MATCH_TIMEOUT:.0f} s")


def _read_only(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect((data_dir / DB_NAME).as_uri() + "?mode=ro", uri=True)


def _store_counts(data_dir: Path) -> dict[str, Any]:
    """What the store holds: records, links, alerts, the largest saved components."""
    with closing(_read_only(data_dir)) as conn:

        def one(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        largest = conn.execute(
            "SELECT COUNT(*) AS n FROM records WHERE withdrawn_at IS NULL GROUP BY component "
            "ORDER BY n DESC LIMIT 5"
        ).fetchall()
        return {
            "records": one("SELECT COUNT(*) FROM records WHERE withdrawn_at IS NULL"),
            "links": one("SELECT COUNT(*) FROM links"),
            "open_alerts": one("SELECT COUNT(*) FROM alerts WHERE state = 'open'"),
            "alert_keys": one("SELECT COUNT(*) FROM alert_keys"),
            "alert_events": one("SELECT COUNT(*) FROM alert_events"),
            "last_cursor": one("SELECT COALESCE(MAX(cursor), 0) FROM alert_events"),
            "max_key": one("SELECT COALESCE(MAX(key), 0) FROM records"),
            "largest_components": [int(r[0]) for r in largest],
        }


def _identifiers_across_components(data_dir: Path, width: int) -> int:
    """Identifier values held by records of more than one saved component (0 when the saved
    state is what one index would have built; values held by more than
    ``MAX_SHARED_IDENTIFIER`` records of an agency may count without being a fault)."""
    with closing(_read_only(data_dir)) as conn:
        rows = conn.execute(
            "SELECT identifiers, component FROM records WHERE withdrawn_at IS NULL"
        ).fetchall()
    if not rows or not width:
        return 0
    ids = np.frombuffer(b"".join(r[0] for r in rows), dtype="<u8").reshape(len(rows), width)
    component = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    split = 0
    for col in range(width):
        present = ids[:, col] != 0
        pairs = np.unique(np.stack([ids[present, col].view(np.int64), component[present]]), axis=1)
        _, per_value = np.unique(pairs[0], return_counts=True)
        split += int((per_value > 1).sum())
    return split


def _peak_rss_gb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024**2, 2)
    except OSError:
        pass
    return None


def _memory_total_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (ValueError, OSError):
        return None


def _spread(values: Sequence[float], digits: int = 1) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


# --- the four measurements ----------------------------------------------------------------------


def measure_ingest(
    pki: Pki,
    data_dir: Path,
    batches: list[EncodedBatch],
    schema: LinkageSchema,
    log: Callable[[str], None],
) -> dict[str, Any]:
    keys = [idempotency_key(b) for b in batches]
    build: list[float] = []
    for batch, key in zip(batches[:3], keys, strict=False):
        started = time.perf_counter()
        for _ in batch_requests(batch, key):
            pass
        build.append(time.perf_counter() - started)
    half = len(batches) // 2
    server = create_server(pki.config(data_dir))
    channels = {a: pki.channel(server.port, a) for a in {b.agency for b in batches}}
    results: dict[str, dict[str, list[Any]]] = {
        mode: {"seconds": [], "matcher_busy": [], "match_seconds": []} for mode in ("idle", "busy")
    }
    try:
        stubs = {a: rpc.AgencyServiceStub(ch) for a, ch in channels.items()}
        receipt_at = None
        for i, (batch, key) in enumerate(zip(batches, keys, strict=True)):
            mode = "idle" if i < half else "busy"
            if mode == "idle":
                _wait_idle(server.matcher, "an ingest batch")
                if receipt_at is not None:
                    results["idle"]["match_seconds"].append(time.perf_counter() - receipt_at)
                gc.collect()
            busy = not server.matcher.wait_idle(0)
            seconds, receipt = _timed_submit(stubs[batch.agency], batch, key)
            receipt_at = time.perf_counter()
            if receipt.accepted != batch.record_count:
                raise click.ClickException(
                    f"ingest batch {i}: {receipt.accepted} of {batch.record_count} accepted"
                )
            results[mode]["seconds"].append(seconds)
            results[mode]["matcher_busy"].append(busy)
            log(
                f"ingest {mode} {i + 1}/{len(batches)}: {batch.record_count:,} {batch.agency} "
                f"records in {seconds * 1000:.0f} ms ({batch.record_count / seconds:,.0f}/s)"
            )
        stopping = time.perf_counter()
    finally:
        for ch in channels.values():
            ch.close()
        server.stop(GRACE)
    n = batches[0].record_count
    out: dict[str, Any] = {
        "records_per_batch": n,
        "target_records_per_s": INGEST_TARGET,
        "client_message_build_seconds_median": round(statistics.median(build), 4),
        "stop_seconds": round(time.perf_counter() - stopping, 2),
    }
    for mode, r in results.items():
        rates = [n / s for s in r["seconds"]]
        out[mode] = {
            "batches": len(rates),
            "records_per_s": _spread(rates, 0),
            "seconds": [round(s, 4) for s in r["seconds"]],
            "matcher_busy_at_start": r["matcher_busy"],
        }
        if r["match_seconds"]:
            out[mode]["match_seconds_of_previous_batch"] = [round(s, 2) for s in r["match_seconds"]]
    out["without_grpc"] = _ingest_without_grpc(
        data_dir.with_name(data_dir.name + "-direct"), batches[:half], keys, schema
    )
    return out


def _ingest_without_grpc(
    data_dir: Path, batches: list[EncodedBatch], keys: list[str], schema: LinkageSchema
) -> dict[str, Any]:
    """The server's share of the idle batches' time: the service's intake (``read_batch``, from
    the same request messages) and ``SqliteStore.submit`` (the commit), in this thread, into a
    fresh store; no gRPC, TLS or matcher."""
    intake: list[float] = []
    commit: list[float] = []
    expected = Expected(schema, batches[0].key_check, Limits())
    store = SqliteStore.open(data_dir)
    try:
        for batch, key in zip(batches, keys, strict=False):
            messages = list(batch_requests(batch, key))
            gc.collect()
            started = time.perf_counter()
            incoming = read_batch(iter(messages), batch.agency, expected)
            checked = time.perf_counter()
            store.submit(incoming, f"{batch.agency} ({CALLERS[batch.agency]})")
            commit.append(time.perf_counter() - checked)
            intake.append(checked - started)
    finally:
        store.close()
    n = batches[0].record_count
    return {
        "intake_seconds": _spread(intake, 4),
        "commit_seconds": _spread(commit, 4),
        "records_per_s": _spread([n / (a + b) for a, b in zip(intake, commit, strict=True)], 0),
    }


def build_standing(
    pki: Pki,
    data_dir: Path,
    groups: list[dict[int, EncodedBatch]],
    first_over_grpc: bool,
    schema: LinkageSchema,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Add ``groups`` (each: one batch per agency, matched only among themselves) to the store
    in ``data_dir``; the first over gRPC to a running server if ``first_over_grpc``."""
    started = time.perf_counter()
    out: dict[str, Any] = {"groups": []}
    if first_over_grpc:
        first, groups = groups[0], groups[1:]
        server = create_server(pki.config(data_dir))
        try:
            for g, agency in enumerate(AGENCIES):
                batch = first.get(g)
                if batch is None:
                    continue
                with closing(pki.channel(server.port, agency)) as ch:
                    receipt = submit_batch(ch, batch, timeout=600)
                if receipt.accepted != batch.record_count:
                    raise click.ClickException(f"{agency}: not every standing record accepted")
            submitted = time.perf_counter()
            _wait_idle(server.matcher, "the first group")
        finally:
            server.stop(GRACE)
        out["groups"].append(
            {
                "how": "grpc",
                "records": sum(b.record_count for b in first.values()),
                "submit_seconds": round(submitted - started, 2),
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        log(f"standing group over gRPC: {out['groups'][-1]}")
    if groups:
        store = SqliteStore.open(data_dir)
        try:
            expected = Expected(schema, store.meta("key_check"), Limits())
            # each group's Matcher saves its own index's agency order; keep the first group's
            order = store.meta(AGENCY_ORDER)
            for group in groups:
                t0 = time.perf_counter()
                for g, agency in enumerate(AGENCIES):
                    batch = group.get(g)
                    if batch is None:
                        continue
                    requests = batch_requests(batch, idempotency_key(batch))
                    store.submit(
                        read_batch(requests, agency, expected), f"{agency} ({CALLERS[agency]})"
                    )
                t1 = time.perf_counter()
                matcher = Matcher(store, schema, AlertBell(), None)
                matcher.start()
                try:
                    _wait_idle(matcher, "a standing group")
                finally:
                    matcher.stop()
                if order is not None and store.meta(AGENCY_ORDER) != order:
                    store.set_meta(AGENCY_ORDER, order)
                out["groups"].append(
                    {
                        "how": "store",
                        "records": sum(b.record_count for b in group.values()),
                        "store_seconds": round(t1 - t0, 2),
                        "seconds": round(time.perf_counter() - t0, 2),
                    }
                )
                log(f"standing group through the store: {out['groups'][-1]}")
        finally:
            store.close()
    out["seconds"] = round(time.perf_counter() - started, 1)
    split = _identifiers_across_components(data_dir, len(schema.identifier_fields))
    if split:
        log(f"warning: {split} identifier values are held in more than one saved component")
    return {**out, **_store_counts(data_dir), "identifier_values_across_components": split}


def measure_rebuild(
    pki: Pki, data_dir: Path, repeats: int, expected_records: int, log: Callable[[str], None]
) -> tuple[dict[str, Any], LinkageServer]:
    """Rebuild ``repeats`` times; the last server is returned running."""
    rebuild: list[float] = []
    whole: list[float] = []
    server = None
    for r in range(repeats):
        gc.collect()
        started = time.perf_counter()
        server = create_server(pki.config(data_dir))
        whole.append(time.perf_counter() - started)
        rebuild.append(server.rebuild_seconds)
        if server.matcher.record_count != expected_records:
            server.stop(GRACE)
            raise click.ClickException(
                f"rebuilt index holds {server.matcher.record_count} records, "
                f"expected {expected_records}"
            )
        log(f"rebuild {r + 1}/{repeats}: {server.rebuild_seconds:.2f} s ({whole[-1]:.2f} s call)")
        if r < repeats - 1:
            server.stop(GRACE)
    assert server is not None
    return {
        "rebuild_seconds": _spread(rebuild, 3),
        "create_server_seconds": _spread(whole, 3),
        "rebuild_seconds_all": [round(s, 3) for s in rebuild],
    }, server


def _percentiles(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    a = np.asarray(values_ms, dtype=np.float64)

    def pct(q: float) -> float | None:
        return round(float(np.percentile(a, q)), 2) if a.size else None

    return {"count": int(a.size), "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100)}


def _component_of(conn: sqlite3.Connection, agency: str, ref: str) -> int:
    """Size of the saved component of one active record."""
    row = conn.execute(
        "SELECT COUNT(*) FROM records WHERE withdrawn_at IS NULL AND component = "
        "(SELECT component FROM records WHERE agency = ? AND ref = ? AND withdrawn_at IS NULL)",
        (agency, ref),
    ).fetchone()
    return int(row[0])


def measure_latency(
    pki: Pki,
    server: LinkageServer,
    probes: list[EncodedBatch],
    budget: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Probes one at a time until all are sent or ``budget`` seconds have passed (the probe
    under way is always finished and counted)."""
    data_dir = server.config.data_dir
    before = _store_counts(data_dir)
    arrivals: dict[tuple[str, str], float] = {}
    arrived = threading.Condition()
    coordinator = pki.channel(server.port, COORDINATOR)
    channels = {a: pki.channel(server.port, a) for a in {p.agency for p in probes}}
    stream = rpc.CoordinatorServiceStub(coordinator).WatchAlerts(
        pb.WatchAlertsRequest(after_cursor=before["last_cursor"])
    )

    def watch() -> None:
        try:
            for event in stream:
                now = time.perf_counter()
                with arrived:
                    for record in event.alert.records:
                        arrivals.setdefault((record.agency, record.record_ref), now)
                    arrived.notify_all()
        except grpc.RpcError:
            pass  # cancelled at the end

    def alert_of(want: tuple[str, str]) -> float | None:
        """When the alert naming ``want`` arrived; None if matching ended without one."""
        seen = functools.partial(arrivals.__contains__, want)
        deadline = time.perf_counter() + MATCH_TIMEOUT
        while True:
            with arrived:
                if arrived.wait_for(seen, 0.5):
                    return arrivals[want]
            if server.matcher.wait_idle(0):  # matched: the event is in flight or never comes
                with arrived:
                    return arrivals[want] if arrived.wait_for(seen, DELIVERY_TIMEOUT) else None
            if server.matcher.failure is not None or time.perf_counter() > deadline:
                raise click.ClickException(f"no alert for probe {want[1]}: matching stuck")

    watcher = threading.Thread(target=watch, name="watcher", daemon=True)
    watcher.start()
    # per counted probe: total ms, receipt ms, size of the component it joined
    timed: list[tuple[float, float, int]] = []
    missed: list[str] = []
    warmup: list[float | None] = []
    started_all = time.perf_counter()
    stopped_by_budget = False
    try:
        stubs = {a: rpc.AgencyServiceStub(ch) for a, ch in channels.items()}
        with closing(_read_only(data_dir)) as conn:
            for i, probe in enumerate(probes):
                if i >= WARMUP_PROBES and time.perf_counter() - started_all > budget:
                    stopped_by_budget = True
                    break
                _wait_idle(server.matcher, "a probe")
                ref = str(probe.record_ids[0])
                messages = list(batch_requests(probe, f"probe:{ref}"))
                want = (probe.agency, ref)
                started = time.perf_counter()
                stubs[probe.agency].SubmitBatch(iter(messages), timeout=60)
                received = time.perf_counter()
                at = alert_of(want)
                if i < WARMUP_PROBES:
                    warmup.append(None if at is None else round(1000 * (at - started), 1))
                    continue
                if at is None:
                    missed.append(ref)
                    continue
                _wait_idle(server.matcher, "a probe")
                size = _component_of(conn, *want)
                timed.append((1000 * (at - started), 1000 * (received - started), size))
                if len(timed) % 25 == 0 or timed[-1][0] > 1000:
                    median = statistics.median(t for t, _, _ in timed)
                    log(
                        f"probe {len(timed)}: {timed[-1][0]:.0f} ms (component {size:,}); "
                        f"p50 so far {median:.1f} ms"
                    )
    finally:
        stream.cancel()
        watcher.join(5)
        for ch in (coordinator, *channels.values()):
            ch.close()
    total = [t for t, _, _ in timed]
    receipt = [r for _, r, _ in timed]
    small = [t for t, _, c in timed if c <= LARGE_COMPONENT]
    large = [t for t, _, c in timed if c > LARGE_COMPONENT]
    return {
        **_percentiles(total),
        "p90_ms": round(float(np.percentile(total, 90)), 2) if total else None,
        "min_ms": round(min(total), 2) if total else None,
        "missed": len(missed),
        "warmup_not_counted_ms": warmup,
        "budget_seconds": budget,
        "stopped_by_budget": stopped_by_budget,
        "seconds": round(time.perf_counter() - started_all, 1),
        "target_p99_ms": LATENCY_TARGET_MS,
        "receipt": _percentiles(receipt),
        "receipt_to_alert": _percentiles([t - r for t, r in zip(total, receipt, strict=True)]),
        f"component_at_most_{LARGE_COMPONENT}": _percentiles(small),
        f"component_over_{LARGE_COMPONENT}": _percentiles(large),
        "probe_component_sizes": _spread([c for _, _, c in timed] or [0], 0),
        "in_order_ms_and_component": [[round(t, 1), c] for t, _, c in timed],
        "standing_before": {k: v for k, v in before.items() if k not in ("last_cursor", "max_key")},
    }


def dice_scan_ms(pool: Pool, standing: pd.DataFrame, probe: int, threshold: float) -> float:
    """Median ms of the matcher's Dice step for one record against every standing record:
    ``similar_pairs`` per agency, as ``StandingIndex`` calls it for a single-record batch."""
    groups = pool.groups_of(standing)
    sides = [
        from_packed(np.concatenate([g[a].bits for g in groups if a in g]), pool.filter_bits)
        for a in sorted({a for g in groups for a in g})
    ]
    rows = pool.rows
    one = pool.bits(
        int(rows["block"].iat[probe]), int(rows["agency"].iat[probe]), int(rows["row"].iat[probe])
    )
    record = from_packed(one[None, :], pool.filter_bits)
    times = []
    for _ in range(DICE_SCAN_REPEATS):
        started = time.perf_counter()
        for side in sides:
            similar_pairs(record, side, threshold, None)
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 2)


# --- the run ------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sqlite": sqlite3.sqlite_version,
    }
    for package in ("grpcio", "protobuf"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def run_service_benchmark(
    standing_sizes: Sequence[int],
    batch: int,
    ingest_count: int,
    repeats: int,
    probes: int,
    seed: int,
    latency_budget: float = 300.0,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    schema = load_schema(SCHEMA)
    sizes = sorted(set(standing_sizes))
    rng = np.random.default_rng(seed)
    phases: dict[str, float] = {}
    foreign: dict[str, float | None] = {}
    memory: dict[str, float | None] = {}
    clock: list[Any] = []

    def begin() -> None:
        gc.collect()
        clock[:] = [time.perf_counter(), _ForeignLoad([os.getpid()])]

    def end(name: str) -> None:
        phases[name] = round(time.perf_counter() - clock[0], 1)
        foreign[name] = clock[1].share()
        memory[name] = _peak_rss_gb()
        log(f"phase {name}: {phases[name]} s")

    report: dict[str, Any] = {
        "benchmark": "service",
        "schema": SCHEMA,
        "standing_sizes": sizes,
        "batch": batch,
        "ingest_batches_per_mode": ingest_count,
        "repeats": repeats,
        "probes": probes,
        "latency_budget_seconds": latency_budget,
        "seed": seed,
        "statistic": "median with min/max over repeats; latency percentiles over probes",
        "transport": "gRPC, mutual TLS (EC P-256), loopback; server from create_server in this "
        "process, client calls in threads of the same process",
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "memory_total_gb": _memory_total_gb(),
        "matcher_threads": "every core (ServiceConfig.threads unset)",
        "versions": _versions(),
        "blas": _blas_report(),
    }
    per_size = probes + WARMUP_PROBES
    with tempfile.TemporaryDirectory(prefix="linkage-bench-service-") as tmp:
        base = Path(tmp)
        begin()
        # ingest batches are one agency's each: twice their records leaves room for that
        needed = max(sizes[-1] + len(sizes) * (per_size + 100), 4 * ingest_count * batch)
        work = base / "csv"
        work.mkdir()
        pool = make_pool(needed, seed, work, log)
        pki = Pki.create(base / "pki")
        end("data")
        report["pool"] = {
            "records": len(pool.rows),
            "blocks": int(pool.rows["block"].max()) + 1,
            "children_per_block": BLOCK_CHILDREN,
        }

        begin()
        report["ingest"] = measure_ingest(
            pki, base / "ingest", ingest_batches(pool, 2 * ingest_count, batch), schema, log
        )
        end("ingest")

        report["standing"] = []
        held: set[int] = set()  # pool rows of probes: in no store until submitted as probes
        consumed = 0  # pool rows used (standing, probes, or left out at a household boundary)
        standing_rows = np.zeros(0, np.int64)
        previous: Path | None = None
        for k, size in enumerate(sizes):
            label = f"{size:,}".replace(",", "_")
            data_dir = base / f"standing-{size}"
            prior = sizes[k - 1] if k else 0
            stop = consumed + size - prior + per_size
            chosen = choose_probes(
                pool, consumed, stop, held, per_size, schema.thresholds.match, rng
            )
            held.update(chosen)
            new_rows = pool.rows.iloc[consumed:stop].drop(index=chosen)
            standing_rows = np.concatenate([standing_rows, new_rows.index.to_numpy()])
            # The rest of the household cut at `stop` is left out of every size, so that no
            # household (no NHS number) spans two groups: restore would find a join missing from
            # the saved components and re-solve everything (see the run's report).
            consumed = _household_end(pool, stop)
            entry: dict[str, Any] = {"records": size, "left_out_at_boundary": consumed - stop}
            begin()
            entry["build"] = build_standing(
                pki, data_dir, pool.groups_of(new_rows), previous is None, schema, log
            )
            if previous is not None:
                entry["build"]["started_from"] = f"a copy of the {sizes[k - 1]:,} store"
            end(f"build_{label}")
            if k + 1 < len(sizes):  # the next size starts from a copy of this store
                shutil.copytree(data_dir, base / f"standing-{sizes[k + 1]}")
            begin()
            entry["rebuild"], server = measure_rebuild(pki, data_dir, repeats, size, log)
            end(f"rebuild_{label}")
            begin()
            try:
                entry["latency"] = measure_latency(
                    pki, server, probe_batches(pool, chosen), latency_budget, log
                )
            finally:
                server.stop(GRACE)
            entry["latency"]["dice_scan_ms_median"] = dice_scan_ms(
                pool, pool.rows.loc[standing_rows], chosen[0], schema.thresholds.possible
            )
            end(f"latency_{label}")
            report["standing"].append(entry)
            shutil.rmtree(data_dir)
            previous = data_dir
    report["phase_seconds"] = phases
    report["total_seconds"] = round(sum(phases.values()), 1)
    report["foreign_cpu_share"] = foreign
    report["peak_rss_gb_after_phase"] = memory
    report["note"] = NOTE
    return report


def print_table(report: dict[str, Any], console: Console) -> None:
    ingest = report["ingest"]
    table = Table(
        title=f"Service over mutual TLS, {report['cpu_count']} cores "
        f"(median \\[min-max]; latency percentiles over {report['probes']} probes)"
    )
    for column in ("measure", "standing", "value", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for mode, label in (("idle", "ingest, matcher idle"), ("busy", "ingest, matcher busy")):
        r = ingest[mode]["records_per_s"]
        table.add_row(
            f"{label} (records/s, {ingest['records_per_batch']:,} per batch)",
            "-",
            f"{r['median']:,.0f} [{r['min']:,.0f}-{r['max']:,.0f}]",
            f">= {ingest['target_records_per_s']:,}",
        )
    direct = ingest["without_grpc"]["records_per_s"]
    table.add_row(
        "  ingest without gRPC (intake + commit, records/s)",
        "-",
        f"{direct['median']:,.0f} [{direct['min']:,.0f}-{direct['max']:,.0f}]",
        "-",
    )
    for entry in report["standing"]:
        n = f"{entry['records']:,}"
        r = entry["rebuild"]["rebuild_seconds"]
        table.add_row("rebuild (s)", n, f"{r['median']:.2f} [{r['min']:.2f}-{r['max']:.2f}]", "-")
        lat = entry["latency"]
        table.add_row(
            f"submission to alert (ms, n={lat['count']}, missed {lat['missed']}"
            + (", cut by the time budget)" if lat["stopped_by_budget"] else ")"),
            n,
            f"p50 {lat['p50_ms']}, p99 {lat['p99_ms']}, max {lat['max_ms']}",
            f"p99 <= {lat['target_p99_ms']:.0f}",
        )
        for key, label in (
            ("receipt", "  of which receipt"),
            (f"component_at_most_{LARGE_COMPONENT}", f"  joining a component <= {LARGE_COMPONENT}"),
            (f"component_over_{LARGE_COMPONENT}", f"  joining a component > {LARGE_COMPONENT}"),
        ):
            part = lat[key]
            table.add_row(
                f"{label} (ms, n={part['count']})",
                n,
                f"p50 {part['p50_ms']}, p99 {part['p99_ms']}",
                "-",
            )
        table.add_row(
            "  Dice step alone (ms)",
            n,
            f"{lat['dice_scan_ms_median']}",
            "-",
        )
    console.print(table)
    blas = report["blas"]
    kernels = (
        ", ".join(
            f"{b['internal_api']} {b['version']} {b['architecture']}" for b in blas["libraries"]
        )
        or "none"
    )
    console.print(
        f"CPU: {report['cpu']} ({report['cpu_count']} cores); BLAS: {kernels}; "
        f"peak RSS {max(v or 0 for v in report['peak_rss_gb_after_phase'].values())} GB "
        f"of {report['memory_total_gb']} GB; largest components: "
        + "; ".join(
            f"{e['records']:,}: {e['build']['largest_components'][:3]}" for e in report["standing"]
        )
    )
    console.print(
        "phases (s): "
        + ", ".join(f"{k} {v}" for k, v in report["phase_seconds"].items())
        + f"; total {report['total_seconds']}"
    )
    console.print(report["note"])


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"a comma-separated list of record counts, got {value!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("give at least one positive record count")
    return sizes


@click.command("service")
@click.option(
    "--standing",
    default="100000,1000000",
    show_default=True,
    callback=_sizes,
    help="Comma-separated standing index sizes (records) for rebuild and latency.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=10000,
    show_default=True,
    help="Records per ingest batch.",
)
@click.option(
    "--ingest-batches",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Ingest batches timed with the matcher idle, and again with it busy.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Rebuilds per standing size.",
)
@click.option(
    "--probes",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Single-record submissions timed per standing size.",
)
@click.option(
    "--latency-budget",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds of probing per standing size; the probe under way is finished.",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object only.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
def service_command(
    standing: list[int],
    batch: int,
    ingest_batches: int,
    repeats: int,
    probes: int,
    latency_budget: float,
    seed: int,
    as_json: bool,
    out: Path | None,
) -> None:
    """Ingest records/s, rebuild time and submission-to-alert latency over mutual TLS."""
    report = run_service_benchmark(
        standing,
        batch,
        ingest_batches,
        repeats,
        probes,
        seed,
        latency_budget,
        log=progress_log(as_json),
    )
    emit(report, as_json, out, print_table)
