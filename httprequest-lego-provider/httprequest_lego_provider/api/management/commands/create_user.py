"""``create_user <username> [<password>]``: create a user or set its password."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api.accounts import AccountError, save_account


class Command(BaseCommand):
    """Create a user (or reset its password); without a password, generate and print one."""

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Arguments of the reference command, the password now optional."""
        parser.add_argument("username")
        parser.add_argument(
            "password",
            nargs="?",
            default=None,
            help="omit to generate one; put -- before a password that starts with -",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Save the account and report it."""
        try:
            result = save_account(options["username"], options["password"])
        except AccountError as exc:
            raise CommandError(str(exc)) from exc
        verb = "created" if result.created else "updated"
        self.stdout.write(f"{verb} user {result.user.username}")
        if result.generated_password:
            self.stdout.write(f"password: {result.generated_password}")
