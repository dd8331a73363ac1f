"""Creating accounts, and the one rule for passwords people choose (every path applies it)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from api.hashers import generate_password, make_generated_password_hash


class AccountError(Exception):
    """An account could not be created or changed; the message is for the operator."""


@dataclass(frozen=True)
class AccountResult:
    """What happened, and the generated password if there is one (shown once)."""

    user: User
    created: bool
    generated_password: str | None


def validate_chosen_password(password: str, user: User) -> None:
    """Apply the password rule (``AUTH_PASSWORD_VALIDATORS``) to a password a person chose.

    The command line, the admin REST API and the Django admin's forms all call this, so a
    password refused on one path is refused on every path. Generated passwords skip it: they
    carry 256 bits of entropy and never come from a person.

    Raises:
        ValidationError: with one message per rule broken.
    """
    validate_password(password, user)


@transaction.atomic
def save_account(
    username: str,
    password: str | None = None,
    *,
    superuser: bool = False,
    email: str = "",
) -> AccountResult:
    """Create ``username`` or set its password; generate one when none is given.

    A given (human) password is checked by Django's validators and stored with the slow
    default hasher; a generated one has 256 bits of entropy and uses the fast hasher.
    """
    if not username or len(username) > 150:
        raise AccountError("username must be 1 to 150 characters")
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    generated = None
    if password is None:
        generated = generate_password()
        user.password = make_generated_password_hash(generated)
    else:
        try:
            validate_chosen_password(password, user)
        except ValidationError as exc:
            raise AccountError("; ".join(exc.messages)) from exc
        user.set_password(password)
    if superuser:
        user.is_staff = user.is_superuser = True
    if email:
        user.email = email
    user.save()
    return AccountResult(user=user, created=created, generated_password=generated)
