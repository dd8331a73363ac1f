"""Withdraw challenge records no client cleaned up: lego does within minutes, a crash never does.

A record's age comes from its :class:`~api.models.PublishedRecord` row, written when it was
(last) presented. Only records presented through httpreq are swept: acme-dns values are meant
to stay until the account's next update. Each stale record is withdrawn through
:func:`api.recorded_backend.recorded_backend`, like a client's cleanup, so it is pushed,
audited (actor and via ``janitor``) and counted like one.

Several units may sweep at once: each record is taken with ``SELECT ... FOR UPDATE SKIP
LOCKED`` and its age checked again under the lock, so a record is withdrawn by one sweeper
only, and one presented again meanwhile is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from dns_backends import Deadline, DnsBackendError

from api import audit
from api.backend import request_deadline
from api.models import PublishedRecord
from api.recorded_backend import recorded_backend

logger = logging.getLogger(__name__)

SWEPT_VIAS = ("httpreq",)
ACTOR = "janitor"


@dataclass(frozen=True)
class Sweep:
    """One record the janitor withdrew (or, in a dry run, would withdraw)."""

    name: str
    value_digest: str
    presented_at: datetime
    withdrawn: bool
    error: str = ""

    def __str__(self) -> str:
        age = f"presented {self.presented_at:%Y-%m-%d %H:%M:%S}Z"
        state = "removed" if self.withdrawn else (f"failed: {self.error}" if self.error else "")
        return " ".join(part for part in (self.name, self.value_digest, age, state) if part)


def stale(max_age_seconds: int, *, now: datetime | None = None) -> list[PublishedRecord]:
    """The records presented through httpreq more than ``max_age_seconds`` ago, oldest first."""
    cutoff = (now or timezone.now()) - timedelta(seconds=max_age_seconds)
    return list(PublishedRecord.objects.filter(via__in=SWEPT_VIAS, presented_at__lt=cutoff))


def sweep(
    max_age_seconds: int, *, dry_run: bool = False, now: datetime | None = None
) -> list[Sweep]:
    """Withdraw every stale record (or, with ``dry_run``, list them); return what was done.

    A failure to withdraw one record is logged and audited; the others are still tried, and
    the failed one is tried again by the next sweep.
    """
    now = now or timezone.now()
    candidates = stale(max_age_seconds, now=now)
    if dry_run:
        return [_sweep(record, withdrawn=False) for record in candidates]
    cutoff = now - timedelta(seconds=max_age_seconds)
    done = []
    with audit.acting(actor=ACTOR, via=ACTOR):
        for candidate in candidates:
            result = _withdraw(candidate.pk, cutoff, request_deadline())
            if result is not None:
                done.append(result)
    return done


def _withdraw(pk: int, cutoff: datetime, deadline: Deadline) -> Sweep | None:
    """Withdraw one record under its row lock; None when another sweeper has it or it is fresh."""
    with transaction.atomic():
        locked = PublishedRecord.objects.filter(pk=pk, via__in=SWEPT_VIAS, presented_at__lt=cutoff)
        if connection.features.has_select_for_update_skip_locked:
            locked = locked.select_for_update(skip_locked=True)
        record = locked.first()
        if record is None:
            return None
        try:
            recorded_backend().cleanup(record.name, record.value, deadline)
        except DnsBackendError as exc:
            logger.warning("janitor: could not withdraw %s: %s", record.name, exc)
            return _sweep(record, withdrawn=False, error=exc.public_message)
        logger.info("janitor: withdrew %s (presented %s)", record.name, record.presented_at)
        return _sweep(record, withdrawn=True)


def _sweep(record: PublishedRecord, *, withdrawn: bool, error: str = "") -> Sweep:
    return Sweep(
        name=record.name,
        value_digest=audit.value_digest(record.value),
        presented_at=record.presented_at,
        withdrawn=withdrawn,
        error=error,
    )
