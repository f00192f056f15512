"""Errors in transport security: certificates, keys and the local certificate authority."""


class SecurityError(Exception):
    """Root of the transport-security errors; every message names the problem."""


class CertificateError(SecurityError):
    """A certificate or key that cannot be made, read, written or used as asked."""
