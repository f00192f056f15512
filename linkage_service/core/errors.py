"""Errors raised by the matching core. Every one names the problem in its message."""


class CoreError(ValueError):
    """Root of the matching core's errors: bad arrays or parameters given to a pure function."""


class BitLengthError(CoreError):
    """A filter length the core cannot use (not a positive multiple of 64) or two that differ."""


class ThresholdError(CoreError):
    """A similarity threshold outside (0, 1]."""
