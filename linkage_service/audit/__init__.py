"""The tamper-evident audit log: a SHA-256 hash chain kept in the service's SQLite store."""

from .chain import (
    AUDIT_DDL,
    GENESIS,
    AuditEntry,
    VerifyResult,
    append,
    entry_hash,
    export,
    verify,
    verify_export,
)
from .errors import AuditError

__all__ = [
    "AUDIT_DDL",
    "GENESIS",
    "AuditEntry",
    "AuditError",
    "VerifyResult",
    "append",
    "entry_hash",
    "export",
    "verify",
    "verify_export",
]
