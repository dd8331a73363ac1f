"""Authentication that keeps generated passwords on the fast hasher."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.http import HttpRequest

from api.hashers import is_generated_password_hash


class GeneratedTokenAwareModelBackend(ModelBackend):
    """Django's model backend, except that a generated password is never "upgraded".

    ``User.check_password`` re-hashes with the preferred (slow) hasher after a successful check
    when the stored hash uses another algorithm; for generated passwords that would turn a
    microsecond check into a half-second one on the next request.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        """Return the active user whose credentials match, else None."""
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if username is None or password is None or "\x00" in username:
            return None  # PostgreSQL cannot even compare a text containing NUL
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            _spend_a_slow_check(password)
            return None
        if is_generated_password_hash(user.password):
            valid = check_password(password, user.password)
            if not valid:
                _spend_a_slow_check(password)
        else:
            valid = user.check_password(password)
        if valid and self.user_can_authenticate(user):
            return user
        return None


def _spend_a_slow_check(password: str) -> None:
    """Cost a failure what a failed human-password check costs.

    Otherwise the time of a failed login tells unknown users and machine accounts (fast hash)
    apart from people: only a successful check of a generated password may be fast.
    """
    get_user_model()().set_password(password)
