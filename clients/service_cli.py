"""Commands that talk to the linkage service: `linkage submit`, `linkage alerts watch|list`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from google.protobuf.json_format import MessageToDict
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from linkage_service.wire.encoded_file import read_encoded
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

from .client import ClientError, Identity, connect, submit_batch, watch_alerts

__all__ = ["alerts", "submit"]

_PROGRESS_MIN_RECORDS = 50_000


def _identity_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--server",
            default="localhost:50051",
            show_default=True,
            envvar="LINKAGE_SERVER",
            help="host:port of the service.",
        ),
        click.option(
            "--cert",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="LINKAGE_CERT",
            help="Your certificate (PEM) [env LINKAGE_CERT].",
        ),
        click.option(
            "--key",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="LINKAGE_KEY",
            help="Your private key (PEM) [env LINKAGE_KEY].",
        ),
        click.option(
            "--ca",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="LINKAGE_CA",
            help="The service's CA certificate [env LINKAGE_CA].",
        ),
        click.option(
            "--insecure-as",
            metavar="NAME",
            help="Plain text to a loopback development server, calling as NAME.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _channel(
    server: str, cert: Path | None, key: Path | None, ca: Path | None, insecure_as: str | None
):  # type: ignore[no-untyped-def]
    return connect(server, Identity(cert, key, ca, insecure_as))


@click.command()
@_identity_options
@click.argument("encoded_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as one JSON object.")
def submit(
    server: str,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    insecure_as: str | None,
    encoded_file: Path,
    as_json: bool,
) -> None:
    """Upload an encoded file to the service. Retries reuse the file's idempotency key, so the
    batch is stored once however often it is sent; the receipt says what was accepted."""
    batch = read_encoded(encoded_file)
    with _channel(server, cert, key, ca, insecure_as) as channel:
        with _progress(batch.record_count) as advance:
            receipt = submit_batch(channel, batch, progress=advance)
    if as_json:
        click.echo(json.dumps(MessageToDict(receipt, preserving_proto_field_name=True)))
        return
    again = " (already submitted: original receipt)" if receipt.replayed else ""
    click.echo(
        f"batch {receipt.batch_id}{again}: {receipt.accepted} accepted, "
        f"{len(receipt.rejected)} rejected",
        err=True,
    )
    for r in receipt.rejected[:20]:
        click.echo(f"  rejected {r.record_ref}: {r.reason}", err=True)


class _progress:
    def __init__(self, total: int) -> None:
        self._bar = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
            disable=total < _PROGRESS_MIN_RECORDS,
        )
        self._total = total

    def __enter__(self) -> Callable[[int], None]:
        self._bar.start()
        task = self._bar.add_task("upload", total=self._total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


@click.group()
def alerts() -> None:
    """Alerts for MASH coordinators: which agencies hold records of one child."""


def _alert_dict(alert: pb.Alert) -> dict[str, Any]:
    return MessageToDict(alert, preserving_proto_field_name=True)


def _alert_line(alert: pb.Alert) -> str:
    band = pb.Band.Name(alert.band).removeprefix("BAND_").lower()
    state = pb.AlertState.Name(alert.state).lower()
    refs = ", ".join(
        f"{r.agency}:{r.record_ref}{' (duplicate)' if r.duplicate else ''}" for r in alert.records
    )
    merged = f" into {alert.merged_into}" if alert.merged_into else ""
    return f"{alert.alert_id} v{alert.version} {state}{merged} {band}: {refs}"


@alerts.command("watch")
@_identity_options
@click.option(
    "--cursor-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".linkage-alerts-cursor"),
    show_default=True,
    help="Where the last cursor seen is kept; watching resumes after it.",
)
@click.option("--from-start", is_flag=True, help="Ignore the saved cursor; replay every alert.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
def alerts_watch(
    server: str,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    insecure_as: str | None,
    cursor_file: Path,
    from_start: bool,
    as_json: bool,
    timeout: float | None,
) -> None:
    """Print alerts as they are released, resuming after the saved cursor (nothing is missed
    or repeated across reconnects)."""
    cursor = 0 if from_start else _read_cursor(cursor_file)
    with _channel(server, cert, key, ca, insecure_as) as channel:
        for event in watch_alerts(channel, cursor, timeout=timeout):
            if as_json:
                click.echo(json.dumps({"cursor": event.cursor, **_alert_dict(event.alert)}))
            else:
                click.echo(f"[{event.cursor}] {_alert_line(event.alert)}")
            _save_cursor(cursor_file, event.cursor)


@alerts.command("list")
@_identity_options
@click.option("--state", type=click.Choice(["open", "closed", "merged"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def alerts_list(
    server: str,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    insecure_as: str | None,
    state: str | None,
    as_json: bool,
) -> None:
    """List alerts (every page), oldest first."""
    states = {"open": pb.OPEN, "closed": pb.CLOSED, "merged": pb.MERGED}
    wanted = states.get(state or "", pb.ALERT_STATE_UNSPECIFIED)
    with _channel(server, cert, key, ca, insecure_as) as channel:
        stub = rpc.CoordinatorServiceStub(channel)
        token = ""
        while True:
            try:
                page = stub.ListAlerts(pb.ListAlertsRequest(state=wanted, page_token=token))
            except Exception as e:  # grpc.RpcError
                raise ClientError(f"{e.code().name}: {e.details()}") from e  # type: ignore[attr-defined]
            for alert in page.alerts:
                click.echo(json.dumps(_alert_dict(alert)) if as_json else _alert_line(alert))
            token = page.next_page_token
            if not token:
                return


def _read_cursor(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError as e:
        raise ClientError(f"{path} does not hold a cursor (a number)") from e


def _save_cursor(path: Path, cursor: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{cursor}\n")
    os.replace(tmp, path)
