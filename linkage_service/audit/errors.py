"""Errors of the audit log. Every message names the problem."""


class AuditError(Exception):
    """An audit entry that cannot be written, or an audit log or database that cannot be read.

    A log that reads but does not verify is not an error: `verify` reports it in its result.
    """
