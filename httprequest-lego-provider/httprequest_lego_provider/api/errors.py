"""The provider's errors and the one place that turns exceptions into responses."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from dns_backends import DnsBackendError, DnsBackendUnavailableError, InvalidRecordError
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class NameNotAllowedError(exceptions.PermissionDenied):
    """The user holds no grant covering the challenge's name."""

    def __init__(self, username: str, fqdn: str) -> None:
        super().__init__(f"user {username} may not manage {fqdn}")


class BodyTooLargeError(exceptions.APIException):
    """The request body is larger than any real client sends."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request body too large"
    default_code = "body_too_large"


class DatabaseUnavailableError(exceptions.APIException):
    """The database did not answer in time: every pooled connection busy, or the server down."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "the database is unavailable or busy: try again"
    default_code = "database_unavailable"


# The HTTP answer to each kind of backend failure, most specific first: a backend says what went
# wrong, this table alone says how the client hears it.
BACKEND_STATUSES: tuple[tuple[type[DnsBackendError], int], ...] = (
    (InvalidRecordError, status.HTTP_400_BAD_REQUEST),
    (DnsBackendUnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (DnsBackendError, status.HTTP_502_BAD_GATEWAY),
)


def backend_status(exc: DnsBackendError) -> int:
    """Return the HTTP status that answers a backend failure."""
    return next(code for kind, code in BACKEND_STATUSES if isinstance(exc, kind))


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    """Turn DRF's nested error detail into ``field: message`` strings."""
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            out.extend(_flatten(value, f"{prefix}.{name}" if prefix and name else name))
        return out
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every known failure with a short JSON ``detail`` that says what is wrong.

    lego and acme.sh show the body to the operator, so it is one line; field errors are also
    kept in ``errors`` for API clients.
    """
    if isinstance(exc, RequestDataTooBig):
        exc = BodyTooLargeError()
    if isinstance(exc, OperationalError):  # also the pool's PoolTimeout, which Django wraps
        logger.warning("database unavailable: %s", exc)
        exc = DatabaseUnavailableError()
    if isinstance(exc, DnsBackendError):
        logger.warning("DNS backend failure: %s", exc, exc_info=exc.__cause__ is not None)
        return Response({"detail": exc.public_message}, status=backend_status(exc))
    # Imported here: rest_framework.views loads the parser classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": "; ".join(_flatten(exc.detail)), "errors": exc.detail}
    return response
