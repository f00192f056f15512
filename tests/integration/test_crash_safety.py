"""kill -9 the server while batches stream in; after a restart nothing acknowledged is lost or
doubled, and a watcher resuming from its cursor receives every alert exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from clients.client import batch_requests, idempotency_key
from linkage_service.store import SqliteStore
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

from .conftest import CALLERS, open_channel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_PORT = re.compile(r"on port (\d+)")


def _write_config(pki, data_dir: Path, path: Path) -> None:
    d = pki.directory
    callers = "\n".join(f'"{k}" = "{v}"' for k, v in CALLERS.items())
    path.write_text(
        f'listen = "127.0.0.1:0"\ndata_dir = "{data_dir}"\nschema = "children-v1"\n'
        f'grace_seconds = 1\n\n[tls]\ncert = "{d / "server.crt"}"\n'
        f'key = "{d / "server.key"}"\nca = "{d / "ca.crt"}"\n\n[callers]\n{callers}\n'
    )


def _serve(config: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "linkage_cli.main", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = _PORT.search(line)
        if found:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("server did not start")


def _submit_all(pki, port, batches, acknowledged, stop) -> None:
    for batch in batches:
        if stop.is_set():
            return
        ch = open_channel(pki, port, batch.agency)
        try:
            receipt = rpc.AgencyServiceStub(ch).SubmitBatch(
                batch_requests(batch, idempotency_key(batch), chunk_records=64), timeout=30
            )
            acknowledged[batch.agency] = receipt
        except grpc.RpcError:
            return
        finally:
            ch.close()


def _watch(pki, port, after, seen, stop) -> None:
    ch = open_channel(pki, port, "mash-1")
    try:
        for event in rpc.CoordinatorServiceStub(ch).WatchAlerts(
            pb.WatchAlertsRequest(after_cursor=after)
        ):
            seen.append(event.cursor)
            if stop.is_set():
                return
    except grpc.RpcError:
        return
    finally:
        ch.close()


def test_kill_nine_while_streaming_loses_and_doubles_nothing(pki, tmp_path, population_batches):
    config, data = tmp_path / "server.toml", tmp_path / "data"
    _write_config(pki, data, config)
    batches = list(population_batches.values())
    proc, port = _serve(config)
    acknowledged: dict[str, pb.BatchReceipt] = {}
    seen: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(pki, port, 0, seen, stop), daemon=True)
    watcher.start()
    submitter = threading.Thread(
        target=_submit_all, args=(pki, port, batches, acknowledged, stop), daemon=True
    )
    submitter.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: later batches are in flight or unsent
    proc.wait()
    stop.set()
    submitter.join(30)
    watcher.join(30)
    assert len(acknowledged) >= 2

    proc, port = _serve(config)
    try:
        cursor = seen[-1] if seen else 0
        resumed: list[int] = []
        stop2 = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(pki, port, cursor, resumed, stop2), daemon=True
        )
        watcher.start()
        again: dict[str, pb.BatchReceipt] = {}
        _submit_all(pki, port, batches, again, threading.Event())
        assert set(again) == {b.agency for b in batches}
        for agency, receipt in acknowledged.items():  # a retry returns the original receipt
            assert again[agency].replayed and again[agency].batch_id == receipt.batch_id
        _wait_matched(pki, port, again)
        time.sleep(1.5)  # the watcher's stream delivers what was released
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    stop2.set()
    watcher.join(10)
    store = SqliteStore.open(data)
    try:
        assert store.active_records().n == sum(b.record_count for b in batches)
        every = [v.cursor for v in store.alert_events(0, limit=10**6)]
    finally:
        store.close()
    received = seen + resumed
    assert len(received) == len(set(received)), "an alert was delivered twice"
    assert sorted(received) == every, "an alert was missed"


def _wait_matched(pki, port, receipts) -> None:
    deadline = time.monotonic() + 120
    for agency, receipt in receipts.items():
        ch = open_channel(pki, port, agency)
        stub = rpc.AgencyServiceStub(ch)
        while time.monotonic() < deadline:
            status = stub.GetBatch(pb.GetBatchRequest(batch_id=receipt.batch_id))
            if status.state == pb.BATCH_STATE_MATCHED:
                break
            time.sleep(0.05)
        ch.close()
