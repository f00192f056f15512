"""Errors in what crosses between agencies and the service: schemas and encoded files."""


class WireError(ValueError):
    """Root of the shared-contract errors; every message names the problem."""


class SchemaError(WireError):
    """A linkage schema that is malformed, unknown or not the one expected."""


class EncodedFileError(WireError):
    """An encoded file that is unreadable, inconsistent or incompatible with another."""
