"""Machine credentials' scope: the networks an account may log in from, and its expiry.

Checked after the password was found right (so a guesser learns nothing from the answer): an
expired password answers 401 saying so, an address outside the allowed networks 403 naming
the address. Every password login of the account is checked (basic auth on ``/present`` and
``/cleanup`` and the API, the JWT token endpoint, the Django admin), and so are acme-dns
updates of the account's acme-dns accounts (acme-dns's own 401 there). Tokens and sessions end
at the expiry too (:func:`api.credentials.active_user_for`, the session middleware).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, User
from django.utils import timezone
from rest_framework import exceptions

from api.client_address import Address, admits, client_address
from api.models import MachineCredentialScope


class AddressNotAllowedError(exceptions.PermissionDenied):
    """403: the right password, from an address outside the account's allowed networks."""

    default_code = "address_not_allowed"

    def __init__(self, address: Address | None, username: str) -> None:
        shown = "unknown" if address is None else str(address)
        super().__init__(f"address {shown} may not use account {username}")


class CredentialExpiredError(exceptions.AuthenticationFailed):
    """401: the right password, after the account's expiry."""

    default_code = "credential_expired"

    def __init__(self, username: str) -> None:
        super().__init__(f"the password of account {username} expired")


def scope_of(user: AbstractBaseUser | User) -> MachineCredentialScope | None:
    """The account's scope row (loaded with the user when selected together), else None."""
    try:
        scope: MachineCredentialScope = user.credential_scope  # type: ignore[union-attr]
    except MachineCredentialScope.DoesNotExist:
        return None
    return scope


def is_expired(user: AbstractBaseUser | User, now: datetime | None = None) -> bool:
    """Whether the account's password has passed its expiry."""
    scope = scope_of(user)
    if scope is None or scope.expires_at is None:
        return False
    return scope.expires_at <= (now or timezone.now())


def scope_admits(user: AbstractBaseUser | User, address: Address | None) -> bool:
    """Whether ``user``'s credentials work now, from ``address`` (unexpired, allowed network)."""
    scope = scope_of(user)
    if scope is None:
        return True
    return not is_expired(user) and admits(scope.allowed_networks, address)


def enforce(user: AbstractBaseUser | User, request: Any) -> None:
    """Refuse a login whose password was right but is expired or comes from elsewhere.

    Raises:
        CredentialExpiredError: the account's expiry has passed.
        AddressNotAllowedError: the request's address is outside the allowed networks.
    """
    scope = scope_of(user)
    if scope is None:
        return
    if is_expired(user):
        raise CredentialExpiredError(user.get_username())
    if scope.allowed_networks:
        address = client_address(getattr(request, "META", None) or {})
        if not admits(scope.allowed_networks, address):
            raise AddressNotAllowedError(address, user.get_username())
