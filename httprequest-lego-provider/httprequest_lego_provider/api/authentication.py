"""Password authentication: generated passwords on the fast hasher, failed logins throttled."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.http import HttpRequest

from api import machine_scope, throttle
from api.credential_cache import verified_credentials
from api.hashers import is_generated_password_hash


class GeneratedTokenAwareModelBackend(ModelBackend):
    """Django's model backend, with a fast path for generated passwords and login throttling.

    Every password login (basic auth, the JWT token endpoint, the Django admin) comes here.

    - A correct generated password is accepted at once, with no throttle query: it cannot be
      guessed, so a flood of bad logins must not slow it down or lock it out.
    - Anything else first passes :func:`api.throttle.check` (429 while the username or the
      client address is locked out, without a password check), then the password check; a
      wrong password is counted by :func:`api.throttle.record_failure`.
    - ``User.check_password`` re-hashes with the preferred (slow) hasher after a successful
      check when the stored hash uses another algorithm; a generated password is never
      "upgraded", which would turn a microsecond check into a half-second one.
    - A human password this worker verified within the last minutes, against the hash the
      account still has, is accepted without the slow check (:mod:`api.credential_cache`),
      after the throttle check like any other human login; a wrong one still costs the slow
      check and counts as a failure.
    - Once the password is right, the account's scope is enforced (:mod:`api.machine_scope`):
      401 once it expired, 403 from an address outside its allowed networks.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        """Return the active user whose credentials match, else None.

        Raises:
            api.throttle.LoginThrottled: the username or the client address is locked out.
            api.machine_scope.CredentialExpiredError: the right password, expired.
            api.machine_scope.AddressNotAllowedError: the right password, from elsewhere.
        """
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if username is None or password is None or "\x00" in username:
            return None  # PostgreSQL cannot even compare a text containing NUL
        users = user_model._default_manager.select_related("credential_scope")
        try:
            user = users.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            user = None
        generated = user is not None and is_generated_password_hash(user.password)
        if user is not None and generated and check_password(password, user.password):
            return self._admit(user, request)
        throttle.check(username, request)
        if user is None or generated:
            _spend_a_slow_check(password)
            valid = False
        elif verified_credentials.verified(username, password, user.password):
            valid = True
        else:
            valid = user.check_password(password)  # may re-hash: remember the hash it keeps
            if valid:
                verified_credentials.remember(username, password, user.password)
        if not valid or user is None:
            throttle.record_failure(username, request)
            return None
        return self._admit(user, request)

    def get_user(self, user_id: Any) -> User | None:
        """The session's account, with its scope (the session middleware checks it)."""
        user_model = get_user_model()
        try:
            user: User = user_model._default_manager.select_related("credential_scope").get(
                pk=user_id
            )
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def _admit(self, user: User, request: HttpRequest | None) -> User | None:
        """The user whose password was right, if active, unexpired and at an allowed address.

        Raises:
            api.machine_scope.CredentialExpiredError: 401, the password expired.
            api.machine_scope.AddressNotAllowedError: 403, from outside the allowed networks.
        """
        if not self.user_can_authenticate(user):
            return None
        machine_scope.enforce(user, request)
        return user


def _spend_a_slow_check(password: str) -> None:
    """Cost a failure what a failed human-password check costs.

    Otherwise the time of a failed login tells unknown users and machine accounts (fast hash)
    apart from people: only a successful check of a generated password may be fast.
    """
    get_user_model()().set_password(password)
