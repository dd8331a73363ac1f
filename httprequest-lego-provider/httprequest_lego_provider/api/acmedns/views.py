"""acme-dns's HTTP endpoints: parse the request, call one service function, render.

``/update`` and ``/health`` answer as acme-dns does; ``/register`` is for staff only (acme-dns
lets anyone register) and also names the user and the name the account is for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from django.contrib.auth.models import User
from rest_framework import permissions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.acmedns.accounts import create_account
from api.acmedns.config import acmedns_config
from api.acmedns.credentials import authenticate
from api.acmedns.errors import (
    AccountRequestError,
    BadTxtError,
    ForbiddenError,
    MalformedJsonError,
    exception_handler,
)
from api.acmedns.networks import account_admits, client_address
from api.acmedns.recorded_updates import recorded_update
from api.names import InvalidNameError, validate_value


def json_object(raw: bytes, *, empty_is_object: bool = False) -> dict[str, Any]:
    """Decode a body that must be one JSON object (acme-dns ignores the content type).

    Raises:
        MalformedJsonError: not UTF-8 JSON, not an object, or nested too deeply.
    """
    if empty_is_object and not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    # ValueError: bad UTF-8 or JSON, or an integer too long to convert; RecursionError: deep
    # nesting well within the size limit.
    except (ValueError, RecursionError) as exc:
        raise MalformedJsonError() from exc
    if not isinstance(body, dict):
        raise MalformedJsonError()
    return body


class _Members(list[tuple[str, Any]]):
    """A JSON object's members in the order they were sent (duplicates kept)."""


def go_struct_fields(raw: bytes, names: tuple[str, ...]) -> dict[str, Any]:
    """The members of a JSON object body that acme-dns's Go decoder would assign to ``names``.

    acme-dns decodes with Go's ``encoding/json``, which matches a member's key to a field name
    regardless of case and lets the last matching member win. Clients rely on it:
    cpu/goacmedns (lego 4.0 to 4.21, cert-manager's acmeDNS solver) sends ``SubDomain`` and
    ``Txt``. Only ASCII case is folded: no client sends the Unicode folds Go also accepts.

    Raises:
        MalformedJsonError: not UTF-8 JSON, not an object, or nested too deeply.
    """
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_Members)
    except (ValueError, RecursionError) as exc:  # as in json_object
        raise MalformedJsonError() from exc
    if not isinstance(body, _Members):
        raise MalformedJsonError()
    wanted = {name.lower(): name for name in names}
    fields: dict[str, Any] = {}
    for key, value in body:
        name = wanted.get(key.lower()) if key.isascii() else None
        if name is not None:
            fields[name] = value
    return fields


class AcmeDnsView(APIView):
    """JSON in acme-dns's shape for answers and errors alike; the body is read as JSON."""

    renderer_classes = (JSONRenderer,)
    parser_classes = ()

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        """acme-dns's error bodies instead of the httpreq endpoints' ``detail``."""
        return exception_handler


class UpdateView(AcmeDnsView):
    """``POST /update``: the account's credentials in headers, ``{subdomain, txt}`` in the body."""

    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)

    def post(self, request: Request) -> Response:
        """Check as acme-dns does (credentials, address, subdomain, value), then publish."""
        account = authenticate(
            request.META.get("HTTP_X_API_USER"), request.META.get("HTTP_X_API_KEY")
        )
        # The account's allowfrom and its user's allowed networks and expiry (machine scope).
        if not account_admits(account, client_address(request.META)):
            raise ForbiddenError()
        body = go_struct_fields(request.body, ("subdomain", "txt"))
        # As acme-dns: the subdomain must be exactly the one it was given, a plain string
        # compare; missing, not a string, another case or another account's is all forbidden.
        if body.get("subdomain") != str(account.subdomain):
            raise ForbiddenError()
        try:
            value = validate_value(body.get("txt"))
        except InvalidNameError as exc:
            raise BadTxtError() from exc
        recorded_update(account, value)
        return Response({"txt": value})


class HealthView(AcmeDnsView):
    """``GET /health``: 200 with an empty body, as acme-dns answers."""

    authentication_classes = ()
    permission_classes = (permissions.AllowAny,)

    def get(self, request: Request) -> Response:
        """The process serves requests."""
        return Response(status=200)


class RegisterView(AcmeDnsView):
    """``POST /register``: staff create an account for a user's granted name.

    Body: acme-dns's optional ``allowfrom`` plus our ``user``, ``domain`` and ``delegated``.
    """

    permission_classes = (permissions.IsAdminUser,)

    def post(self, request: Request) -> Response:
        """Create the account; the key is in this answer only."""
        body = json_object(request.body, empty_is_object=True)
        delegated = body.get("delegated", False)
        if not isinstance(delegated, bool):
            raise AccountRequestError("delegated must be true or false")
        new = create_account(
            body.get("user"),
            body.get("domain"),
            delegated=delegated,
            allowfrom=body.get("allowfrom", []),
            config=acmedns_config(),
            actor=cast(User, request.user),
        )
        return Response(new.register_answer(), status=201)
