"""``janitor [--dry-run] [--max-age S] [--every S]``: withdraw records no client cleaned up."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from api import audit
from api.janitor import sweep
from api.operations import operations


class Command(BaseCommand):
    """Withdraw records older than DJANGO_JANITOR_MAX_AGE; also prune the audit trail.

    Without ``--every`` it sweeps once (a cron job, a Pebble check); with it, it sweeps every
    so many seconds until stopped (a Pebble service).
    """

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """How old is stale, whether to only list, and how often to repeat."""
        parser.add_argument("--dry-run", action="store_true", help="list, remove nothing")
        parser.add_argument(
            "--max-age", type=int, default=None, help="seconds (default DJANGO_JANITOR_MAX_AGE)"
        )
        parser.add_argument(
            "--every",
            type=int,
            default=None,
            const=0,
            nargs="?",
            help="repeat every N seconds (default DJANGO_JANITOR_INTERVAL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Sweep once, or forever with ``--every``."""
        config = operations()
        max_age = config.janitor_max_age if options["max_age"] is None else options["max_age"]
        if max_age < 60:
            raise CommandError("--max-age must be at least 60 seconds")
        every = options["every"]
        if every is None:
            self._pass(max_age, dry_run=options["dry_run"], retention=config.audit_retention_days)
            return
        interval = every or config.janitor_interval
        while True:  # pragma: no cover - a service loop; each pass is tested on its own
            close_old_connections()
            self._pass(max_age, dry_run=options["dry_run"], retention=config.audit_retention_days)
            time.sleep(interval)

    def _pass(self, max_age: int, *, dry_run: bool, retention: int) -> None:
        swept = sweep(max_age, dry_run=dry_run)
        verb = "would remove" if dry_run else "swept"
        for item in swept:
            self.stdout.write(f"{verb} {item}")
        pruned = audit.prune(retention, dry_run=dry_run)
        removed = sum(1 for item in swept if item.withdrawn)
        summary = f"{len(swept)} stale" if dry_run else f"{removed} removed"
        prune_verb = "would prune" if dry_run else "pruned"
        self.stdout.write(f"{summary}; {prune_verb} {pruned} audit rows")
