"""Tokens and sessions end when the credentials they were issued under change.

Every JWT (access and refresh) and every session carries a *credential fingerprint*: a keyed
hash of the account's id, its stored password hash and its credential generation. Changing the
password changes the hash; deactivating the account bumps the generation (so reactivating it
does not bring old tokens back); deleting it removes the account. A token or session whose
fingerprint no longer matches is refused, on every request and on refresh.

The fingerprint is an HMAC under ``SECRET_KEY``, so a token reveals nothing about the password
hash (simplejwt's own ``CHECK_REVOKE_TOKEN`` puts an unkeyed MD5 of the hash in the token,
readable by whoever holds it, and its refresh endpoint does not check it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib.auth import get_user_model, logout
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in
from django.db.models import F
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare, salted_hmac

from api import machine_scope
from api.client_address import client_address
from api.models import CredentialGeneration

TOKEN_CLAIM = "cred"  # noqa: S105 (a claim name, not a secret)
SESSION_KEY = "_api_credential"
_HMAC_SALT = "api.credentials.fingerprint"


def fingerprint(user: User) -> str:
    """The fingerprint of ``user``'s current credentials (32 hex characters)."""
    try:
        generation = user.credential_generation.generation
    except CredentialGeneration.DoesNotExist:
        generation = 0
    message = f"{user.pk}\x00{user.password}\x00{generation}"
    return salted_hmac(_HMAC_SALT, message, algorithm="sha256").hexdigest()[:32]


def matches(user: User, presented: object) -> bool:
    """Whether ``presented`` (a claim or session value) is ``user``'s current fingerprint."""
    return isinstance(presented, str) and constant_time_compare(presented, fingerprint(user))


def active_user_for(user_id: object, presented: object) -> User | None:
    """The active account ``user_id`` if ``presented`` still matches its credentials, else None.

    An account whose password expired (:mod:`api.machine_scope`) has no valid token either.
    One query: the account, its generation and its scope together.
    """
    if not isinstance(user_id, (str, int)):
        return None
    users = get_user_model()._default_manager.select_related(
        "credential_generation", "credential_scope"
    )
    try:
        user: User = users.get(pk=user_id)
    except (get_user_model().DoesNotExist, ValueError, TypeError):
        return None
    if not user.is_active or machine_scope.is_expired(user) or not matches(user, presented):
        return None
    return user


def revoke(user_id: int) -> None:
    """End every token and session of account ``user_id`` by bumping its generation."""
    bumped = CredentialGeneration.objects.filter(user_id=user_id).update(
        generation=F("generation") + 1
    )
    if not bumped:
        CredentialGeneration.objects.get_or_create(user_id=user_id, defaults={"generation": 1})


@receiver(pre_save, sender="auth.User")
def _revoke_on_deactivation(sender: type[User], instance: User, **kwargs: Any) -> None:
    """Deactivating an account ends its tokens for good, even if it is reactivated later.

    (A ``QuerySet.update(is_active=False)`` sends no signal: the account is refused while it is
    inactive, but its old tokens would work again after a reactivation.)
    """
    if instance.pk is None or instance.is_active or kwargs.get("raw"):
        return
    was_active = sender._default_manager.filter(pk=instance.pk, is_active=True).exists()
    if was_active:
        revoke(instance.pk)


def bind_session(request: HttpRequest, user: User) -> None:
    """Tie ``request``'s session to ``user``'s current credentials."""
    request.session[SESSION_KEY] = fingerprint(user)


@receiver(user_logged_in)
def _bind_session(
    sender: type[User],  # noqa: ARG001 (signals pass their arguments by name)
    request: HttpRequest | None,
    user: User,
    **kwargs: Any,  # noqa: ARG001
) -> None:
    """Store the fingerprint in the session that a login opens."""
    if request is not None and hasattr(request, "session"):
        bind_session(request, user)


class CredentialBoundSessionMiddleware:
    """Log out a session whose account's credentials changed since the login.

    Django already ends sessions on a password change (its session auth hash); this adds the
    deactivation generation, so a session never outlives a deactivation either, and the
    account's scope: a session ends at the password's expiry and is refused from outside the
    account's allowed networks. Placed right after ``AuthenticationMiddleware``; requests
    without a session cookie cost nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Check the session's fingerprint before the view sees ``request.user``."""
        user = request.user
        if user.is_authenticated:
            session: Mapping[str, object] = request.session
            in_scope = machine_scope.scope_admits(user, client_address(request.META))
            if not in_scope or not matches(user, session.get(SESSION_KEY)):
                logout(request)
        return self.get_response(request)
