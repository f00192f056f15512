"""The server's configuration: one TOML file, read once at the edge into a frozen object.

Example (every key)::

    listen = "127.0.0.1:50051"       # host:port; port 0 picks a free one
    data_dir = "data"                # the store; relative paths are from this file's folder
    schema = "children-v1"           # built-in schema name or a schema file
    key_check = "3f9a..."            # optional; unset: the first batch pins it
    insecure = false                 # plain text: only with --insecure, only on loopback
    grace_seconds = 10               # time in-flight calls get to finish on SIGTERM / SIGINT

    [tls]
    cert = "certs/server.crt"
    key = "certs/server.key"
    ca = "certs/ca.crt"              # clients must present a certificate this CA signed

    [callers]                        # certificate common name -> role
    "police" = "agency:police"
    "mash-1" = "coordinator"
    "dpo" = "auditor"
    "ops" = "admin"

    [limits]
    max_batch_records = 500000
    max_message_bytes = 16777216
    max_ref_chars = 128

    [matching]
    threads = 2
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Limits", "ServiceConfig", "TlsPaths", "load_config", "is_loopback"]

ROLES = ("coordinator", "auditor", "admin")
_AGENCY_ROLE = re.compile(r"agency:[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEYS = {
    "listen",
    "data_dir",
    "schema",
    "key_check",
    "insecure",
    "grace_seconds",
    "tls",
    "callers",
    "limits",
    "matching",
}


@dataclass(frozen=True)
class TlsPaths:
    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class Limits:
    max_batch_records: int = 500_000
    max_message_bytes: int = 16 * 1024 * 1024
    max_ref_chars: int = 128


@dataclass(frozen=True)
class ServiceConfig:
    listen: str
    data_dir: Path
    schema: str
    tls: TlsPaths | None
    callers: dict[str, str] = field(default_factory=dict)
    key_check: str | None = None
    insecure: bool = False
    grace_seconds: float = 10.0
    limits: Limits = Limits()
    threads: int | None = None

    def __post_init__(self) -> None:
        host = self.listen.rpartition(":")[0]
        if not host or not self.listen.rpartition(":")[2].isdigit():
            raise ConfigError(f"listen must be host:port, got {self.listen!r}")
        if self.insecure and not is_loopback(host):
            raise ConfigError(
                f"plain-text transport is allowed only on a loopback address, not {host!r}"
            )
        if not self.insecure and self.tls is None:
            raise ConfigError("a [tls] table (cert, key, ca) is required unless insecure = true")
        for name, role in self.callers.items():
            if role not in ROLES and not _AGENCY_ROLE.fullmatch(role):
                raise ConfigError(
                    f"caller {name!r}: unknown role {role!r} (agency:<name>, {', '.join(ROLES)})"
                )


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: Path, insecure_flag: bool = False) -> ServiceConfig:
    """Parse the file; ``insecure = true`` in it takes effect only with ``--insecure``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {path} is not valid TOML: {e}") from e
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(f"config {path}: unknown keys {', '.join(unknown)}")
    base = path.resolve().parent
    insecure = bool(raw.get("insecure", False))
    if insecure != insecure_flag:
        raise ConfigError(
            f"config {path} asks for plain-text transport: pass --insecure too"
            if insecure
            else f"--insecure needs insecure = true in {path} (a TLS config is never downgraded)"
        )
    return ServiceConfig(
        listen=str(raw.get("listen", "127.0.0.1:50051")),
        data_dir=base / str(raw.get("data_dir", "data")),
        schema=_schema_ref(raw.get("schema", "children-v1"), base),
        tls=_tls(raw.get("tls"), base, path),
        callers={str(k): str(v) for k, v in _table(raw, "callers", path).items()},
        key_check=raw.get("key_check"),
        insecure=insecure,
        grace_seconds=float(raw.get("grace_seconds", 10.0)),
        limits=_limits(_table(raw, "limits", path), path),
        threads=_table(raw, "matching", path).get("threads"),
    )


def _schema_ref(value: Any, base: Path) -> str:
    text = str(value)
    return str(base / text) if text.endswith((".toml", ".json")) else text


def _table(raw: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config {path}: [{key}] must be a table")
    return value


def _tls(value: Any, base: Path, path: Path) -> TlsPaths | None:
    if value is None:
        return None
    missing = [k for k in ("cert", "key", "ca") if k not in value]
    if missing:
        raise ConfigError(f"config {path}: [tls] lacks {', '.join(missing)}")
    return TlsPaths(base / value["cert"], base / value["key"], base / value["ca"])


def _limits(table: dict[str, Any], path: Path) -> Limits:
    unknown = sorted(set(table) - {"max_batch_records", "max_message_bytes", "max_ref_chars"})
    if unknown:
        raise ConfigError(f"config {path}: unknown [limits] keys {', '.join(unknown)}")
    limits = Limits(**{k: int(v) for k, v in table.items()})
    if min(limits.max_batch_records, limits.max_message_bytes, limits.max_ref_chars) < 1:
        raise ConfigError(f"config {path}: limits must be positive")
    return limits
