"""``unlock_login [--username U] [--address A]``: lift a login lockout before its window ends."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api.throttle import unlock


class Command(BaseCommand):
    """Forget the failed logins counted for a username and/or a client address."""

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """A username, an address, or both."""
        parser.add_argument("--username", default=None)
        parser.add_argument("--address", default=None, help="an IPv4 or IPv6 address")

    def handle(self, *args: Any, **options: Any) -> None:
        """Delete the counters and say how many there were."""
        if options["username"] is None and options["address"] is None:
            raise CommandError("give --username and/or --address")
        try:
            removed = unlock(username=options["username"], address=options["address"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"unlocked ({removed} counter{'s' if removed != 1 else ''} removed)")
