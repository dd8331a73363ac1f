"""Every write to the DNS backend, measured, audited and remembered for the janitor.

Callers that change records (httpreq, acme-dns, the janitor, deleting an acme-dns account) use
:func:`recorded_backend` instead of the bare backend, so each change is one audit row, one count
by outcome, one latency sample and, for a present, one :class:`~api.models.PublishedRecord`.

The row is written *before* the backend is asked: if the process dies half-way, the janitor
still knows the value may be in DNS and withdraws it in time (withdrawing an absent value is a
no-op). It is deleted only once a withdrawal succeeded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, transaction
from django.utils import timezone
from dns_backends import Deadline, DnsBackend, DnsBackendError

from api import audit
from api.backend import get_backend
from api.metrics import backend_name, failure_reason, metrics
from api.models import AuditAction, AuditResult, PublishedRecord

logger = logging.getLogger(__name__)


class RecordedBackend:
    """The process's backend, with every change audited and counted."""

    def __init__(self, backend: DnsBackend) -> None:
        self._backend = backend

    def present(
        self,
        fqdn: str,
        value: str,
        deadline: Deadline | None = None,
        *,
        withdrawing: Sequence[str] = (),
    ) -> None:
        """Remember the value, then publish it (see the module docstring).

        ``withdrawing``: older values at ``fqdn`` to remove in the same change (the backend's
        ``replace``: one commit or UPDATE message), as acme-dns's update keeps two values. Each
        value is still one audit row and one count.
        """
        old_values = [old for old in withdrawing if old != value]
        remember(fqdn, value, audit.current_via())
        changes = [(AuditAction.PRESENT, value)]
        changes += [(AuditAction.CLEANUP, old) for old in old_values]
        if old_values:
            self._apply(
                "replace",
                changes,
                fqdn,
                lambda: self._backend.replace(fqdn, value, old_values, deadline),
            )
        else:
            self._apply(
                AuditAction.PRESENT,
                changes,
                fqdn,
                lambda: self._backend.present(fqdn, value, deadline),
            )

        def settle() -> None:
            PublishedRecord.objects.filter(name=fqdn, value=value).update(confirmed=True)
            if old_values:
                PublishedRecord.objects.filter(name=fqdn, value__in=old_values).delete()

        _after_the_change(settle)

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Withdraw the value, then forget it."""
        self._apply(
            AuditAction.CLEANUP,
            [(AuditAction.CLEANUP, value)],
            fqdn,
            lambda: self._backend.cleanup(fqdn, value, deadline),
        )
        rows = PublishedRecord.objects.filter(name=fqdn, value=value)
        _after_the_change(rows.delete)

    def values(self, fqdn: str) -> set[str]:
        """The values the backend publishes at ``fqdn`` (not a change: not recorded)."""
        return self._backend.values(fqdn)

    def _apply(
        self,
        operation: str,
        changes: Sequence[tuple[AuditAction, str]],
        fqdn: str,
        change: Callable[[], None],
    ) -> None:
        """Run one backend call making ``changes`` at ``fqdn``: time it, count and audit each."""
        via = audit.current_via()
        rows: list[tuple[AuditAction, str | None]] = list(changes)
        started = time.perf_counter()
        try:
            change()
        except Exception as exc:
            reason = failure_reason(exc)
            message = exc.public_message if isinstance(exc, DnsBackendError) else "internal error"
            for action, _ in changes:
                metrics().count_change(action, via, "failed", reason)
            audit.record_many(rows, fqdn, result=AuditResult.FAILED, reason=message)
            raise
        finally:
            metrics().backend_seconds.labels(operation=operation, backend=backend_name()).observe(
                time.perf_counter() - started
            )
        for action, _ in changes:
            metrics().count_change(action, via, "ok")
        audit.record_many(rows, fqdn, result=AuditResult.OK)


def _after_the_change(write: Callable[[], object]) -> None:
    """Update the record's row once the change is durable; a failure must not undo the answer.

    A row left unconfirmed only hides the value from the gauge; a row left after a cleanup only
    makes the janitor withdraw an absent value later (a no-op).
    """
    try:
        with transaction.atomic():
            write()
    except DatabaseError:
        logger.exception("cannot update the published record after the change")


def remember(fqdn: str, value: str, via: str) -> None:
    """Record (or refresh: a client presenting again is alive) that the value may be in DNS.

    A database failure here fails the present before anything is published.
    """
    try:
        # One INSERT ... ON CONFLICT DO UPDATE (a round trip, not a select, a savepoint and a
        # write); ``confirmed`` of an existing row is left as it was.
        PublishedRecord.objects.bulk_create(
            [PublishedRecord(name=fqdn, value=value, via=via[:16], presented_at=timezone.now())],
            update_conflicts=True,
            unique_fields=["name", "value"],
            update_fields=["via", "presented_at"],
        )
    except DatabaseError:
        logger.exception("cannot remember the record %s before publishing it", fqdn)
        raise


def refused(action: AuditAction, fqdn: str, value: str, reason: str) -> None:
    """Audit and count a change refused before the backend was asked (no grant, no account)."""
    metrics().count_change(action, audit.current_via(), "refused", "not_allowed")
    audit.record(action, fqdn, value=value, result=AuditResult.REFUSED, reason=reason)


def recorded_backend(backend: DnsBackend | None = None) -> RecordedBackend:
    """``backend``, by default the process's (:func:`api.backend.get_backend`), recorded."""
    return RecordedBackend(backend if backend is not None else get_backend())
