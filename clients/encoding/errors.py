"""Errors raised on the agency side while reading secrets, inputs and schemas."""


class EncodingError(ValueError):
    """Root of the agency-side errors; every message names the problem."""


class SecretError(EncodingError):
    """The shared secret is missing, unreadable or malformed."""


class InputError(EncodingError):
    """An input file that cannot be encoded at all (empty, no header, no record id column)."""
