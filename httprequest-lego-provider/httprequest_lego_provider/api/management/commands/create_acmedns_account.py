"""``create_acmedns_account <username> <domain> [--delegated] [--allowfrom CIDR,...]``."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api.acmedns.accounts import create_account
from api.acmedns.config import acmedns_config
from api.acmedns.errors import AcmeDnsError
from api.acmedns.networks import split_allowfrom


class Command(BaseCommand):
    """Create an acme-dns account for a user's granted name; print the account file, once.

    The output is the JSON lego (``ACME_DNS_STORAGE_PATH``) and cert-manager read:
    ``{"<domain>": {"fulldomain", "subdomain", "username", "password", "server_url"}}``. The
    key is stored hashed: it cannot be shown again.
    """

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """The owner, the name, the style and the networks."""
        parser.add_argument("username", help="the user the account acts for")
        parser.add_argument("domain", help="the name certificates are for, e.g. example.com")
        parser.add_argument(
            "--delegated",
            action="store_true",
            help="publish under DJANGO_ACMEDNS_ZONE; the user adds a CNAME to fulldomain once",
        )
        parser.add_argument(
            "--allowfrom", default="", help="comma-separated networks (CIDR) updates may come from"
        )
        parser.add_argument(
            "--server-url",
            default=None,
            help="the service's base URL for server_url (default: DJANGO_ACMEDNS_SERVER_URL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Create the account and print the account file as one JSON object."""
        config = acmedns_config()
        try:
            new = create_account(
                options["username"],
                options["domain"],
                delegated=options["delegated"],
                allowfrom=split_allowfrom(options["allowfrom"]),
                config=config,
            )
        except AcmeDnsError as exc:
            raise CommandError(exc.detail or exc.code) from exc
        server_url = options["server_url"] or config.server_url
        self.stdout.write(json.dumps(new.storage(server_url), indent=2))
