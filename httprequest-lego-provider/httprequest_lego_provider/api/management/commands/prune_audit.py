"""``prune_audit [--dry-run] [--days N]``: delete audit rows older than the retention period."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api import audit
from api.operations import operations


class Command(BaseCommand):
    """Delete audit rows older than DJANGO_AUDIT_RETENTION_DAYS (or ``--days``)."""

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """The retention period, and whether to only count."""
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        """Delete (or count) and say how many."""
        days = (
            options["days"] if options["days"] is not None else operations().audit_retention_days
        )
        if days < 1:
            raise CommandError("--days must be at least 1")
        count = audit.prune(days, dry_run=options["dry_run"])
        self.stdout.write(
            f"{'would prune' if options['dry_run'] else 'pruned'} {count} audit rows"
        )
