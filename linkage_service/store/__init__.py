"""Durable state of the linkage service. The embedded default is SQLite (:class:`SqliteStore`);
:class:`Store` is the interface another database would implement."""

from .base import Store
from .errors import StoreError
from .model import AlertRecordView, AlertVersion, BatchHeader, IncomingBatch, Receipt, StoredRecords
from .sqlite import DB_NAME, SqliteStore

__all__ = [
    "DB_NAME",
    "AlertRecordView",
    "AlertVersion",
    "BatchHeader",
    "IncomingBatch",
    "Receipt",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoredRecords",
]
