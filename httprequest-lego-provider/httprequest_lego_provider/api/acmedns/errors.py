"""The acme-dns errors, and the one place that turns exceptions into acme-dns answers.

acme-dns clients expect ``{"error": "<code>"}`` bodies, not the ``{"detail": ...}`` of the
httpreq endpoints, so this protocol has its own mapping; the HTTP status of a DNS backend
failure still comes from :func:`api.errors.backend_status`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from dns_backends import DnsBackendError
from rest_framework import exceptions, status
from rest_framework.response import Response

from api.errors import backend_status

logger = logging.getLogger(__name__)


class AcmeDnsError(Exception):
    """Root of the acme-dns errors: an acme-dns error code, its status, an optional detail.

    ``detail`` is an extension for operators (register and the command); the update endpoint
    answers with the code alone, as acme-dns does.
    """

    code = "error"
    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(detail or self.code)


class ForbiddenError(AcmeDnsError):
    """Bad credentials, an address outside allowfrom, not the account's subdomain, no grant.

    acme-dns answers a subdomain that is missing or malformed with this too: it compares the
    string with the account's before looking at it (its ``bad_subdomain`` cannot be reached).
    """

    code = "forbidden"
    status_code = status.HTTP_401_UNAUTHORIZED


class BadTxtError(AcmeDnsError):
    """The value is not 43 characters of unpadded base64url."""

    code = "bad_txt"


class MalformedJsonError(AcmeDnsError):
    """The body is not a JSON object."""

    code = "malformed_json_payload"


class InvalidAllowfromError(AcmeDnsError):
    """An allowfrom entry is not a network in CIDR notation."""

    code = "invalid_allowfrom_cidr"


class AccountRequestError(AcmeDnsError):
    """Our extension to register: the user, the name or the style cannot make an account."""

    code = "bad_account_request"


class BodyTooLargeError(AcmeDnsError):
    """The body is larger than any real client sends."""

    code = "body_too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def _body(code: str, detail: str = "") -> dict[str, str]:
    return {"error": code, "detail": detail} if detail else {"error": code}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:  # noqa: ARG001
    """Answer every known failure in acme-dns's shape; None lets an unknown bug surface."""
    if isinstance(exc, RequestDataTooBig):
        exc = BodyTooLargeError()
    if isinstance(exc, AcmeDnsError):
        return Response(_body(exc.code, exc.detail), status=exc.status_code)
    if isinstance(exc, DnsBackendError):
        logger.warning("DNS backend failure: %s", exc, exc_info=exc.__cause__ is not None)
        return Response(_body("dns_backend_error", exc.public_message), status=backend_status(exc))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response = Response(_body("forbidden"), status=exc.status_code)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            response["WWW-Authenticate"] = auth_header
        return response
    if isinstance(exc, exceptions.PermissionDenied):
        return Response(_body("forbidden", "staff only"), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.APIException):
        return Response(_body(str(exc.default_code)), status=exc.status_code)
    return None
