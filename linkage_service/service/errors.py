"""The service's errors. Each names the gRPC status it maps to; :attr:`ServiceError.code`
resolves it, so importing these (as the `linkage` command does) does not load grpc."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Root of the service's errors; the message names the problem and goes to the caller."""

    status = "INTERNAL"

    @property
    def code(self) -> Any:
        import grpc

        return grpc.StatusCode[self.status]


class ConfigError(ServiceError):
    """The server's configuration file is unusable."""

    status = "FAILED_PRECONDITION"


class Unauthenticated(ServiceError):
    status = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    status = "PERMISSION_DENIED"


class InvalidBatch(ServiceError):
    """Malformed content: bit length, ragged chunks, counts, references, popcounts."""

    status = "INVALID_ARGUMENT"


class WrongEncoding(ServiceError):
    """Encoded under another schema or key: the batch can never match here."""

    status = "FAILED_PRECONDITION"


class TooLarge(ServiceError):
    status = "RESOURCE_EXHAUSTED"


class NotFound(ServiceError):
    status = "NOT_FOUND"


class AlreadyExists(ServiceError):
    status = "ALREADY_EXISTS"


class Busy(ServiceError):
    status = "RESOURCE_EXHAUSTED"
