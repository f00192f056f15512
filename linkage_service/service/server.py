"""The server factory: ``create_server(config) -> LinkageServer`` with the bound port.

Tests build real servers on port 0 and stop them with a grace period; ``linkage serve`` does
the same with the configured address and stops on SIGTERM / SIGINT.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from linkage_service.security.certs import load_tls_files
from linkage_service.store import SqliteStore
from linkage_service.store.base import Store
from linkage_service.wire.schema import load_schema
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

from .auth import Authoriser, Caller
from .config import ServiceConfig
from .errors import ConfigError, WrongEncoding
from .intake import Expected
from .matcher import Matcher
from .servicers import AgencyServicer, AlertBell, CoordinatorServicer

__all__ = ["LinkageServer", "create_server"]

log = logging.getLogger(__name__)
SERVICE_ACTOR = "service"
# Server threads. Each alert watcher holds one for its life (at most _MAX_WATCHERS), each upload
# one while it streams; calls beyond _MAX_RPCS are refused with RESOURCE_EXHAUSTED by gRPC.
_WORKERS = 48
_MAX_RPCS = 64
_MAX_WATCHERS = 16


class _KeyCheckPin:
    """The agencies' key check: from the config, or pinned by the first batch (and kept)."""

    def __init__(self, store: Store, configured: str | None) -> None:
        self._store, self._lock = store, threading.Lock()
        pinned = store.meta("key_check")
        if configured and configured != pinned:
            # the operator's config wins (a re-keyed scheme, or a wrong first pin), recorded
            store.set_meta_audited(
                "key_check",
                configured,
                SERVICE_ACTOR,
                "key check set from config",
                {"key_check": configured, "previous": pinned or ""},
            )
        self.value = configured or pinned

    def admit(self, key_check: str) -> None:
        with self._lock:
            if self.value is None:
                self._store.set_meta_audited(
                    "key_check",
                    key_check,
                    SERVICE_ACTOR,
                    "key check pinned",
                    {"key_check": key_check},
                )
                self.value = key_check
            elif key_check != self.value:
                raise WrongEncoding(
                    f"batch key check {key_check} differs from the service's {self.value}: "
                    "the batch was encoded with a different secret"
                )


@dataclass
class LinkageServer:
    server: grpc.Server
    port: int
    store: Store
    matcher: Matcher
    config: ServiceConfig
    rebuild_seconds: float

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let in-flight ones finish within ``grace`` seconds, then finish
        the matching already committed and close the store."""
        self.server.stop(self.config.grace_seconds if grace is None else grace).wait()
        self.matcher.stop()
        self.store.audit(SERVICE_ACTOR, "service stopped", {})
        self.store.close()


def _open_store(config: ServiceConfig) -> tuple[Store, Expected, _KeyCheckPin]:
    schema = load_schema(config.schema)
    store = SqliteStore.open(config.data_dir)
    known = store.meta("schema_fingerprint")
    if known is None:
        store.set_meta("schema_fingerprint", schema.fingerprint)
        store.set_meta("filter_bits", str(schema.filter_bits))
        names = ",".join(f'"{s.name}"' for s in schema.identifier_fields)
        store.set_meta("identifier_names", f"[{names}]")
    elif known != schema.fingerprint:
        store.close()
        raise ConfigError(
            f"the store in {config.data_dir} holds records of schema fingerprint {known}; "
            f"the config names {schema.name} ({schema.fingerprint})"
        )
    pin = _KeyCheckPin(store, config.key_check)
    return store, Expected(schema, pin.value, config.limits), pin


def _actor(name: str) -> str:
    """A caller's name as the audit log can hold it (printable, at most 200 characters): a
    certificate or, in plain-text mode, metadata may carry anything."""
    cleaned = "".join(c if c.isprintable() else "?" for c in name)[:200]
    return cleaned or "?"


def _credentials(config: ServiceConfig) -> grpc.ServerCredentials | None:
    if config.insecure:
        return None
    assert config.tls is not None
    files = load_tls_files(config.tls.cert, config.tls.key, config.tls.ca)
    return grpc.ssl_server_credentials(
        [(files.private_key, files.cert_chain)],
        root_certificates=files.root,
        require_client_auth=True,
    )


def create_server(config: ServiceConfig) -> LinkageServer:
    """Open the store, rebuild the index, bind the port (0 picks one); started on return."""
    store, expected, pin = _open_store(config)
    bell = AlertBell()
    started = time.perf_counter()
    matcher = Matcher(store, expected.schema, bell, config.threads)
    matcher.rebuild()
    rebuild_seconds = time.perf_counter() - started

    def record(caller: Caller, action: str, detail: dict[str, object]) -> None:
        store.audit(_actor(str(caller)), action, detail)

    def record_denial(rpc_name: str, who: str, reason: str) -> None:
        store.audit(_actor(who), "call denied", {"rpc": rpc_name, "reason": reason})

    def current() -> Expected:
        return Expected(expected.schema, pin.value, expected.limits)

    auth = Authoriser(config.callers, config.insecure, record_denial)
    limit = config.limits.max_message_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_WORKERS),
        maximum_concurrent_rpcs=_MAX_RPCS,
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    rpc.add_AgencyServiceServicer_to_server(
        AgencyServicer(store, auth, current, pin.admit, matcher.poke, record), server
    )
    rpc.add_CoordinatorServiceServicer_to_server(
        CoordinatorServicer(store, auth, bell, _MAX_WATCHERS), server
    )
    checker = _add_standard_services(server)
    matcher.on_health = lambda ok: _set_health(checker, ok)
    credentials = _credentials(config)
    if credentials is None:
        port = server.add_insecure_port(config.listen)
    else:
        port = server.add_secure_port(config.listen, credentials)
    server.start()
    matcher.start()
    store.audit(
        SERVICE_ACTOR,
        "service started",
        {
            "listen": config.listen.rpartition(":")[0] + f":{port}",
            "tls": not config.insecure,
            "records": matcher.record_count,
            "rebuild_seconds": round(rebuild_seconds, 3),
        },
    )
    return LinkageServer(server, port, store, matcher, config, rebuild_seconds)


_HEALTH_NAMES = ("", "mash.linkage.v1.AgencyService", "mash.linkage.v1.CoordinatorService")


def _set_health(checker: health.HealthServicer, ok: bool) -> None:
    """NOT_SERVING while matching is failing: batches are still taken, alerts wait."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if ok
        else (health_pb2.HealthCheckResponse.NOT_SERVING)
    )
    for name in _HEALTH_NAMES:
        checker.set(name, status)


def _add_standard_services(server: grpc.Server) -> health.HealthServicer:
    """gRPC health checking and reflection, so stock tools can find and probe the service."""
    checker = health.HealthServicer()
    _set_health(checker, True)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    names = (
        pb.DESCRIPTOR.services_by_name["AgencyService"].full_name,
        pb.DESCRIPTOR.services_by_name["CoordinatorService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    return checker
