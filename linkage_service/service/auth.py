"""Who is calling, and may they? Every RPC declares its roles; everything else is denied.

The caller's identity is the common name of the client certificate that mutual TLS verified
against the service's CA; the server's config maps it to one role (``agency:<name>``,
``coordinator``, ``auditor``, ``admin``). A caller without a certificate, or with one from
another CA, never gets past the TLS handshake. In plain-text mode (loopback only, for
development) the identity comes from the ``x-linkage-caller`` metadata entry instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from .errors import PermissionDenied, ServiceError, Unauthenticated

__all__ = ["CALLER_METADATA", "Caller", "RPC_ROLES", "Authoriser"]

CALLER_METADATA = "x-linkage-caller"
AGENCY = "agency"

# Which roles may call which RPC ("agency" means any agency:<name>, acting only as itself).
RPC_ROLES: dict[str, frozenset[str]] = {
    "SubmitBatch": frozenset({AGENCY}),
    "WithdrawRecords": frozenset({AGENCY}),
    "GetBatch": frozenset({AGENCY}),
    "WatchAlerts": frozenset({"coordinator"}),
    "ListAlerts": frozenset({"coordinator"}),
    "GetAlert": frozenset({"coordinator"}),
}


@dataclass(frozen=True)
class Caller:
    name: str
    role: str

    @property
    def agency(self) -> str | None:
        return self.role.partition(":")[2] if self.role.startswith(f"{AGENCY}:") else None

    @property
    def role_kind(self) -> str:
        return AGENCY if self.agency else self.role

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class Authoriser:
    """Resolves callers against the config's ``[callers]`` and records every denial."""

    def __init__(
        self,
        callers: Mapping[str, str],
        insecure: bool,
        record_denial: Callable[[str, str, str], None],
    ) -> None:
        self._callers, self._insecure, self._record = dict(callers), insecure, record_denial

    def identify(self, context: grpc.ServicerContext) -> str:
        if self._insecure:
            found = dict(context.invocation_metadata()).get(CALLER_METADATA)
            if not found:
                raise Unauthenticated(
                    f"plain-text mode: no {CALLER_METADATA} metadata naming the caller"
                )
            return str(found)
        names = context.auth_context().get("x509_common_name") or []
        if not names:
            raise Unauthenticated("no verified client certificate on this connection")
        return bytes(names[0]).decode("utf-8", "replace")

    def caller(self, rpc: str, context: grpc.ServicerContext) -> Caller:
        name = self.identify(context)
        role = self._callers.get(name)
        if role is None:
            raise PermissionDenied(f"caller {name!r} has no role in this service's config")
        caller = Caller(name, role)
        if caller.role_kind not in RPC_ROLES[rpc]:
            allowed = ", ".join(sorted(RPC_ROLES[rpc]))
            raise PermissionDenied(f"{rpc} is not open to {caller}; it needs role {allowed}")
        return caller

    def check(self, rpc: str, context: grpc.ServicerContext) -> Caller:
        """The caller, if ``rpc`` is open to its role; otherwise the refusal is recorded and
        the call aborted with UNAUTHENTICATED or PERMISSION_DENIED."""
        try:
            return self.caller(rpc, context)
        except ServiceError as e:
            self._record(rpc, _peer_name(context, self._insecure), str(e))
            context.abort(e.code, str(e))
            raise  # abort raises; this keeps type checkers informed


def _peer_name(context: grpc.ServicerContext, insecure: bool) -> str:
    if insecure:
        return str(dict(context.invocation_metadata()).get(CALLER_METADATA) or context.peer())
    names = context.auth_context().get("x509_common_name") or []
    return bytes(names[0]).decode("utf-8", "replace") if names else context.peer()
