"""``rotate_password <username>``: give an account a new generated password, printed once."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api.hashers import generate_password, make_generated_password_hash


class Command(BaseCommand):
    """Replace the password with a new generated one; the old one and its tokens stop at once.

    The new password (256 bits, the fast hasher) is printed once and stored only hashed. Every
    JWT and session of the account ends, since they are bound to the stored hash
    (:mod:`api.credentials`), and workers drop their remembered check of the old one
    (:mod:`api.credential_cache`). The account's allowed networks and expiry are unchanged.
    """

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """The account to rotate."""
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        """Rotate, then print the new password (the only time it is shown)."""
        user_model = get_user_model()
        password = generate_password()
        with transaction.atomic():
            user = (
                user_model._default_manager.select_for_update()
                .filter(**{user_model.USERNAME_FIELD: options["username"]})
                .first()
            )
            if user is None:
                raise CommandError(f"no user {options['username']!r}")
            user.password = make_generated_password_hash(password)
            user.save(update_fields=["password"])
        self.stdout.write(f"rotated the password of user {user.get_username()}")
        self.stdout.write(f"password: {password}")
