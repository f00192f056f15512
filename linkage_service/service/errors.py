"""The service's errors. Each carries the gRPC status it maps to (see :mod:`.status`)."""

from __future__ import annotations

import grpc


class ServiceError(Exception):
    """Root of the service's errors; the message names the problem and goes to the caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class ConfigError(ServiceError):
    """The server's configuration file is unusable."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class InvalidBatch(ServiceError):
    """Malformed content: bit length, ragged chunks, counts, references, popcounts."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class WrongEncoding(ServiceError):
    """Encoded under another schema or key: the batch can never match here."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class TooLarge(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND
