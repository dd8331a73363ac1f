"""``list_domains <username|*>``: one line per grant, ``<user> <access level> <domain>``."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api.grants import GrantError, list_grants


class Command(BaseCommand):
    """List the grants of a user, or of everyone with ``*``."""

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """A username or ``*``."""
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the grants."""
        try:
            grants = list_grants(options["username"])
        except GrantError as exc:
            raise CommandError(str(exc)) from exc
        for grant in grants:
            self.stdout.write(str(grant))
