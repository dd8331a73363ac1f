"""What ``allow_domains`` and ``revoke_domains`` share."""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable, Iterable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api.grants import Grant, GrantError, split_names

GrantChange = Callable[[str, Iterable[str], Iterable[str]], list[Grant]]


class GrantCommand(BaseCommand):
    """``<command> <username> [--domains a,b] [--subdomains c,d]``."""

    change: GrantChange
    verb: str

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Username and comma-separated names."""
        parser.add_argument("username")
        parser.add_argument("--domains", default="", help="names granted exactly")
        parser.add_argument("--subdomains", default="", help="names whose children are granted")

    def handle(self, *args: Any, **options: Any) -> None:
        """Apply the change and print one line per grant changed."""
        try:
            domains = split_names(options["domains"])
            subdomains = split_names(options["subdomains"])
            if not domains and not subdomains:
                raise GrantError("give --domains and/or --subdomains")
            changed = type(self).change(options["username"], domains, subdomains)
        except GrantError as exc:
            raise CommandError(str(exc)) from exc
        for grant in changed:
            self.stdout.write(f"{self.verb} {grant}")
        if not changed:
            self.stdout.write("nothing to change")
