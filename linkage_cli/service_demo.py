"""`linkage demo`: the whole story on loopback with mutual TLS and the embedded store.

A local CA issues the service's and every caller's certificate; five agencies encode their own
registers with the shared secret; the service runs as its own process (`linkage serve`); the
agencies submit one after another while a MASH coordinator watches the alert stream; the report
says what the coordinator saw, how good it is against the ground truth, and how long each
submission took to reach the coordinator. The service is then stopped with SIGTERM.
"""

from __future__ import annotations

import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from benchmarks.metrics import pair_metrics
from benchmarks.offline_run import encode_agencies
from benchmarks.population import (
    AGENCIES,
    generate_population,
    true_cross_agency_pairs,
    write_agency_csvs,
)
from clients.client import Identity, connect, submit_batch
from clients.encoding.secret import generate_secret_file, read_secret
from linkage_service.security.certs import init_ca, issue
from linkage_service.wire.schema import load_schema
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

__all__ = ["run_service_demo"]

COORDINATOR = "mash-coordinator"
_PORT = re.compile(r"on port (\d+)")


@dataclass
class _Watch:
    events: list[tuple[float, pb.AlertEvent]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _pki(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    init_ca(directory)
    issue(directory, "server", "localhost", directory, hosts=("localhost", "127.0.0.1"))
    for agency in AGENCIES:
        issue(directory, "agency", agency, directory)
    issue(directory, "coordinator", COORDINATOR, directory)


def _config(out_dir: Path, certs: Path) -> Path:
    callers = "\n".join(
        [f'"{a}" = "agency:{a}"' for a in AGENCIES] + [f'"{COORDINATOR}" = "coordinator"']
    )
    path = out_dir / "server.toml"
    path.write_text(
        'listen = "127.0.0.1:0"\ndata_dir = "service-data"\nschema = "children-v1"\n'
        f'grace_seconds = 5\n\n[tls]\ncert = "{certs.name}/server.crt"\n'
        f'key = "{certs.name}/server.key"\nca = "{certs.name}/ca.crt"\n\n[callers]\n{callers}\n'
    )
    return path


def _start_service(config: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "linkage_cli.main", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        found = _PORT.search(line)
        if found:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(found.group(1))
    raise RuntimeError(f"the service did not start (exit status {proc.wait()})")


def _identity(certs: Path, stem: str) -> Identity:
    return Identity(certs / f"{stem}.crt", certs / f"{stem}.key", certs / "ca.crt")


def _watch(channel: grpc.Channel, watch: _Watch) -> None:
    try:
        for event in rpc.CoordinatorServiceStub(channel).WatchAlerts(pb.WatchAlertsRequest()):
            with watch.lock:
                watch.events.append((time.perf_counter(), event))
    except grpc.RpcError:
        return


def _until_quiet(watch: _Watch, quiet: float = 2.0, limit: float = 120.0) -> None:
    """Wait until no alert version has arrived for ``quiet`` seconds since the later of now and
    the last arrival (at most ``limit``): the stream delivers a batch's versions after it."""
    start = time.perf_counter()
    while time.perf_counter() < start + limit:
        with watch.lock:
            last = max(watch.events[-1][0] if watch.events else 0.0, start)
        if time.perf_counter() - last >= quiet:
            return
        time.sleep(0.1)


def _wait_matched(channel: grpc.Channel, batch_id: str) -> None:
    stub = rpc.AgencyServiceStub(channel)
    while stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id)).state != pb.BATCH_STATE_MATCHED:
        time.sleep(0.01)


def run_service_demo(children: int, seed: int, out_dir: Path, console: Console) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = load_schema("children-v1")
    population = generate_population(children, seed=seed)
    csv_paths = write_agency_csvs(population, out_dir)
    truth = true_cross_agency_pairs(population)
    certs = out_dir / "certs"
    _pki(certs)
    secret_path = out_dir / "shared-secret.key"
    secret_path.unlink(missing_ok=True)
    generate_secret_file(secret_path)
    secret, _ = read_secret(secret_path, {})
    batches, encode_s = encode_agencies(csv_paths, schema, secret)
    del secret
    shutil.rmtree(out_dir / "service-data", ignore_errors=True)
    proc, port = _start_service(_config(out_dir, certs))
    address = f"localhost:{port}"
    watch = _Watch()
    watcher_channel = connect(address, _identity(certs, f"coordinator-{COORDINATOR}"))
    threading.Thread(target=_watch, args=(watcher_channel, watch), daemon=True).start()
    rows = []
    try:
        for batch in batches:
            with connect(address, _identity(certs, f"agency-{batch.agency}")) as channel:
                started = time.perf_counter()
                receipt = submit_batch(channel, batch)
                acknowledged = time.perf_counter()
                _wait_matched(channel, receipt.batch_id)
                matched = time.perf_counter()
            rows.append((batch, receipt, started, acknowledged, matched))
        _until_quiet(watch)  # the stream may still be delivering the last versions
    finally:
        watcher_channel.close()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(60)
    _report(console, rows, watch, truth, encode_s, status, out_dir)


def _latest(watch: _Watch) -> dict[str, pb.Alert]:
    latest: dict[str, pb.Alert] = {}
    for _, event in watch.events:
        latest[event.alert.alert_id] = event.alert
    return latest


def _alert_pairs(alerts: list[pb.Alert], match_only: bool) -> list[tuple[str, str, str, str]]:
    """Cross-agency pairs the alerts assert: every two records of one alert (with
    ``match_only``, two records that automatic links alone join: the same match group)."""
    pairs = []
    for alert in alerts:
        for x, y in combinations(alert.records, 2):
            joined = x.match_group == y.match_group != 0 if match_only else True
            if x.agency != y.agency and joined:
                pairs.append((x.agency, x.record_ref, y.agency, y.record_ref))
    return pairs


def _report(console, rows, watch, truth, encode_s, status, out_dir) -> None:  # type: ignore[no-untyped-def]
    table = Table(
        title="Submissions over mutual TLS (each agency in turn; the coordinator watching)"
    )
    for column in (
        "agency",
        "records",
        "accepted",
        "upload s",
        "alerts released",
        "to alert p50 ms",
        "to alert p99 ms",
    ):
        table.add_column(column, justify="right")
    latencies_all = []
    for k, (batch, receipt, started, acknowledged, _matched) in enumerate(rows):
        until = rows[k + 1][2] if k + 1 < len(rows) else float("inf")
        mine = [t - started for t, _ in watch.events if started <= t < until]
        latencies_all += mine
        table.add_row(
            batch.agency,
            f"{batch.record_count:,}",
            f"{receipt.accepted:,}",
            f"{acknowledged - started:.2f}",
            f"{len(mine):,}",
            _ms(mine, 50),
            _ms(mine, 99),
        )
    console.print(table)
    latest = list(_latest(watch).values())
    open_alerts = [a for a in latest if a.state == pb.OPEN]
    with_match = [a for a in open_alerts if any(r.band == pb.BAND_MATCH for r in a.records)]
    quality = Table(title="What the coordinator saw, against the ground truth (cross-agency pairs)")
    for column in ("records linked", "alerts", "pairs", "precision", "recall", "F1"):
        quality.add_column(column, justify="right")
    for label, chosen, only in (
        ("automatically (match)", with_match, True),
        ("incl. for review (possible)", open_alerts, False),
    ):
        m = pair_metrics(_alert_pairs(chosen, only), truth)
        quality.add_row(
            label,
            f"{len(chosen):,}",
            f"{m['predicted']:,}",
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            f"{m['f1']:.4f}",
        )
    console.print(quality)
    console.print(
        f"{len(watch.events):,} alert versions streamed; {len(open_alerts):,} open alerts "
        f"({sum(len(a.agencies) >= 3 for a in open_alerts):,} naming 3+ agencies). "
        f"Submission to alert: p50 {_ms(latencies_all, 50)} ms, p99 {_ms(latencies_all, 99)} ms. "
        f"Encoding {encode_s:.1f} s. Service stopped with SIGTERM (exit status {status}). "
        f"Files in {out_dir}/ (certs/, service-data/, server.toml)."
    )


def _ms(values: list[float], q: int) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0] * 1000:.0f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[q - 1] * 1000:.0f}"
