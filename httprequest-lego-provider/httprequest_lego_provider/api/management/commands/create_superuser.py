"""``create_superuser <username> [--email E] [--password P]``: no terminal needed."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api.accounts import AccountError, save_account


class Command(BaseCommand):
    """Create a superuser (or reset one); the generated password is printed once."""

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Username, optional e-mail and password."""
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        """Save the account and report it."""
        try:
            result = save_account(
                options["username"], options["password"], superuser=True, email=options["email"]
            )
        except AccountError as exc:
            raise CommandError(str(exc)) from exc
        verb = "created" if result.created else "updated"
        self.stdout.write(f"{verb} superuser {result.user.username}")
        if result.generated_password:
            self.stdout.write(f"password: {result.generated_password}")
