"""The gRPC servicers: check the caller, convert, call the store or matcher, map errors.

They hold no rules: what is valid is in :mod:`.intake`, what may leave in
:mod:`linkage_service.notifications`, who may call what in :mod:`.auth`.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC
from typing import Any

import grpc

from linkage_service import notifications as release
from linkage_service.store.base import Store
from linkage_service.store.errors import IdempotencyConflict
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

from .auth import Authoriser, Caller
from .errors import AlreadyExists, Busy, InvalidBatch, NotFound, ServiceError
from .intake import Expected, read_batch

__all__ = ["AgencyServicer", "CoordinatorServicer", "AlertBell"]

_STATE_NAMES = {pb.OPEN: "open", pb.CLOSED: "closed", pb.MERGED: "merged"}
MAX_PAGE = 1000
DEFAULT_PAGE = 100
WATCH_POLL_SECONDS = 1.0
MAX_REASON_CHARS = 200
MAX_INT64 = (1 << 63) - 1
_BATCH_ID = re.compile(r"[0-9]{1,18}")


class AlertBell:
    """Rung when alerts are released, so watchers wake without polling the store often."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rung = 0

    def ring(self) -> None:
        with self._cond:
            self._rung += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._rung != seen, timeout)
            return self._rung

    @property
    def rung(self) -> int:
        with self._cond:
            return self._rung


def _aborting(context: grpc.ServicerContext, e: ServiceError) -> None:
    context.abort(e.code, str(e))


class AgencyServicer(rpc.AgencyServiceServicer):
    def __init__(
        self,
        store: Store,
        auth: Authoriser,
        expected: Callable[[], Expected],
        admit: Callable[[str], None],
        on_commit: Callable[[], None],
        record: Callable[[Caller, str, dict[str, object]], None],
    ) -> None:
        self._store, self._auth, self._expected = store, auth, expected
        self._admit, self._on_commit, self._record = admit, on_commit, record

    def SubmitBatch(  # noqa: N802 - gRPC method names
        self, request_iterator: Iterable[pb.SubmitBatchRequest], context: grpc.ServicerContext
    ) -> pb.BatchReceipt:
        caller = self._auth.check("SubmitBatch", context)
        try:
            batch = read_batch(request_iterator, caller.agency or "", self._expected())
            self._admit(batch.header.key_check)
        except ServiceError as e:
            self._record(caller, "batch refused", {"status": e.status, "reason": str(e)})
            _aborting(context, e)
            raise
        try:
            receipt = self._store.submit(batch, str(caller))
        except IdempotencyConflict as e:
            refused = AlreadyExists(str(e))
            self._record(caller, "batch refused", {"status": refused.status, "reason": str(e)})
            _aborting(context, refused)
            raise
        if not receipt.replayed:
            self._on_commit()
        return release.agency_receipt(receipt)

    def WithdrawRecords(  # noqa: N802
        self, request: pb.WithdrawRecordsRequest, context: grpc.ServicerContext
    ) -> pb.WithdrawRecordsResponse:
        caller = self._auth.check("WithdrawRecords", context)
        if request.agency != caller.agency:
            e = ServiceError(f"caller is agency {caller.agency!r}, not {request.agency!r}")
            self._record(caller, "call denied", {"rpc": "WithdrawRecords", "reason": str(e)})
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(e))
        if not request.record_refs:
            _aborting(context, InvalidBatch("no record_refs to withdraw"))
        reason = request.reason
        if len(reason) > MAX_REASON_CHARS or not reason.isprintable():
            _aborting(
                context,
                InvalidBatch(f"reason must be at most {MAX_REASON_CHARS} printable characters"),
            )
        keys, missing = self._store.withdraw(
            caller.agency or "", list(request.record_refs), request.reason, str(caller)
        )
        if keys:
            self._on_commit()
        return pb.WithdrawRecordsResponse(
            withdrawn=len(keys),
            not_withdrawn=[
                pb.RejectedRecord(record_ref=r, reason="not held by this agency") for r in missing
            ],
        )

    def GetBatch(  # noqa: N802
        self, request: pb.GetBatchRequest, context: grpc.ServicerContext
    ) -> pb.BatchStatus:
        caller = self._auth.check("GetBatch", context)
        found = (
            self._store.batch(caller.agency or "", int(request.batch_id))
            if _BATCH_ID.fullmatch(request.batch_id)
            else None
        )
        if found is None:  # another agency's batch is indistinguishable from no batch
            _aborting(context, NotFound(f"no batch {request.batch_id!r} of this agency"))
            raise AssertionError
        receipt, matched = found
        state = pb.BATCH_STATE_MATCHED if matched else pb.BATCH_STATE_COMMITTED
        return pb.BatchStatus(receipt=release.agency_receipt(receipt), state=state)


class CoordinatorServicer(rpc.CoordinatorServiceServicer):
    def __init__(
        self, store: Store, auth: Authoriser, bell: AlertBell, max_watchers: int = 16
    ) -> None:
        self._store, self._auth, self._bell = store, auth, bell
        # each stream holds a server thread for its life: bound them, so calls always get one
        self._watchers = threading.BoundedSemaphore(max_watchers)
        self._max_watchers = max_watchers

    def WatchAlerts(  # noqa: N802
        self, request: pb.WatchAlertsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.AlertEvent]:
        self._auth.check("WatchAlerts", context)
        if not self._watchers.acquire(blocking=False):
            _aborting(context, Busy(f"{self._max_watchers} alert watchers already connected"))
        try:
            context.send_initial_metadata(())  # the watcher knows at once it is connected
            yield from self._stream(min(request.after_cursor, MAX_INT64), context)
        finally:
            self._watchers.release()

    def _stream(self, cursor: int, context: grpc.ServicerContext) -> Iterator[pb.AlertEvent]:
        while context.is_active():
            rung = self._bell.rung
            events = self._store.alert_events(cursor)
            for version in events:
                yield pb.AlertEvent(cursor=version.cursor, alert=release.coordinator_alert(version))
                cursor = version.cursor
            if not events:
                self._bell.wait(rung, WATCH_POLL_SECONDS)

    def ListAlerts(  # noqa: N802
        self, request: pb.ListAlertsRequest, context: grpc.ServicerContext
    ) -> pb.ListAlertsResponse:
        self._auth.check("ListAlerts", context)
        size = request.page_size or DEFAULT_PAGE
        if size > MAX_PAGE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size is at most {MAX_PAGE}")
        after = _page_after(request.page_token, context)
        if request.state and request.state not in _STATE_NAMES:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown state {request.state}")
        try:
            since, until = _time(request, "updated_after"), _time(request, "updated_before")
        except (ValueError, OverflowError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"a time is out of range: {e}")
            raise
        found = self._store.list_alerts(
            _STATE_NAMES.get(request.state), since, until, after, size + 1
        )
        page = found[:size]
        token = _page_token(page[-1].alert_id) if len(found) > size else ""
        return pb.ListAlertsResponse(
            alerts=[release.coordinator_alert(a) for a in page], next_page_token=token
        )

    def GetAlert(  # noqa: N802
        self, request: pb.GetAlertRequest, context: grpc.ServicerContext
    ) -> pb.Alert:
        self._auth.check("GetAlert", context)
        alert = self._store.alert(request.alert_id)
        if alert is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no alert {request.alert_id!r}")
            raise AssertionError
        return release.coordinator_alert(alert)


def _time(request: Any, name: str) -> Any:
    return request.__getattribute__(name).ToDatetime(tzinfo=UTC) if request.HasField(name) else None


def _page_token(alert_id: str) -> str:
    return base64.urlsafe_b64encode(alert_id.encode()).decode()


def _page_after(token: str, context: grpc.ServicerContext) -> int:
    if not token:
        return 0
    try:
        number = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("A-"))
        if not 0 <= number <= MAX_INT64:
            raise ValueError(number)
        return number
    except (ValueError, UnicodeDecodeError):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this service gave")
        raise
