"""Errors of the durable store; foreign (sqlite3, OS) errors are wrapped once, here."""


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message names the data directory or problem."""


class IdempotencyConflict(StoreError):
    """An idempotency key already used by the agency for a batch with different content."""
