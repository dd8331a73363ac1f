"""The audit trail: one row and one JSON log line per change, saying who, what, where from, how.

Who and where from come from the *acting context*: :class:`AuditContextMiddleware` puts the
request there (its client address, and its user once DRF has authenticated it); code that acts
for someone else says so with :func:`acting` (the acme-dns update for the account's owner, the
janitor for itself). Values are never stored: a row holds the first 16 hex characters of the
value's SHA-256, enough to match a row to the record DNS serves. See docs/audit.md.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from api.client_address import client_address
from api.models import AuditAction, AuditEvent, AuditResult

logger = logging.getLogger("audit")
errors_logger = logging.getLogger(__name__)

DIGEST_CHARS = 16
REASON_CHARS = 200
NAME_CHARS = 300


@dataclass(frozen=True)
class ActingContext:
    """Who is making changes right now, through which path, from which address."""

    actor: str | None = None
    via: str | None = None
    address: str | None = None
    request: HttpRequest | None = None


_context: contextvars.ContextVar[ActingContext] = contextvars.ContextVar(
    "audit_acting_context",
    default=ActingContext(),  # noqa: B039 - frozen: never changed, only replaced by set()
)


@contextmanager
def acting(
    *,
    actor: str | None = None,
    via: str | None = None,
    address: str | None = None,
    request: HttpRequest | None = None,
) -> Iterator[None]:
    """Attribute the changes made inside the block; what an outer block said is kept.

    So an acme-dns update, which publishes through the httpreq code path for the account's
    owner, stays ``via=acme-dns``.
    """
    outer = _context.get()
    token = _context.set(
        ActingContext(
            actor=outer.actor or actor,
            via=outer.via or via,
            address=outer.address or address,
            request=outer.request or request,
        )
    )
    try:
        yield
    finally:
        _context.reset(token)


def current_via() -> str:
    """The path the current change arrives by (``httpreq``, ``acme-dns``, ``admin`` ...)."""
    context = _context.get()
    if context.via:
        return context.via
    if context.request is not None:
        path = context.request.path
        if path.startswith("/admin/"):
            return "admin"
        return "admin-api" if path.startswith("/api/") else "http"
    return "command" if _command_name() else "system"


def current_actor() -> str:
    """Who makes the current change: a username, ``anonymous``, ``command:<name>``, ``system``."""
    context = _context.get()
    if context.actor:
        return context.actor
    if context.request is not None:
        # DRF sets the Django request's user once it has authenticated the request.
        user = getattr(context.request, "user", None)
        if user is not None and user.is_authenticated:
            return str(user.get_username())
        return "anonymous"
    command = _command_name()
    return f"command:{command}" if command else "system"


def _command_name() -> str | None:
    """The management command this process runs (``manage.py <command>``), if any."""
    argv = sys.argv
    if len(argv) > 1 and argv[0].endswith("manage.py"):
        return argv[1][:40]
    return None


def value_digest(value: str) -> str:
    """The first 16 hex characters of the value's SHA-256: matches a row, reveals no value."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_CHARS]


def record(
    action: AuditAction,
    name: str,
    *,
    result: AuditResult,
    value: str | None = None,
    subject: str = "",
    reason: str = "",
) -> AuditEvent:
    """Write one audit row and its JSON log line.

    The log line is written first, so a database failure still leaves the line; the row is
    written in a savepoint, so a failure to store it never breaks the caller's transaction or
    turns an applied change into an error (it is logged instead).
    """
    (event,) = record_many([(action, value)], name, result=result, subject=subject, reason=reason)
    return event


def record_many(
    changes: Sequence[tuple[AuditAction, str | None]],
    name: str,
    *,
    result: AuditResult,
    subject: str = "",
    reason: str = "",
) -> list[AuditEvent]:
    """Write a row and a log line per ``(action, value)`` at ``name``, as :func:`record` does.

    The rows go to the database in one statement: one change of several values (acme-dns's
    update) costs one round trip, not one per value.
    """
    context = _context.get()
    at, actor, via = timezone.now(), current_actor()[:150], current_via()[:16]
    events = [
        AuditEvent(
            at=at,
            actor=actor,
            via=via,
            action=action,
            name=name[:NAME_CHARS],
            subject=subject[:150],
            value_digest=value_digest(value) if value is not None else "",
            client_address=(context.address or "")[:64],
            result=result,
            reason=" ".join(reason.split())[:REASON_CHARS],
        )
        for action, value in changes
    ]
    for event in events:
        logger.info(json.dumps(as_log_record(event), sort_keys=True))
    try:
        with transaction.atomic():
            if len(events) == 1:
                events[0].save()
            else:
                AuditEvent.objects.bulk_create(events)
    except DatabaseError:
        errors_logger.exception("could not store the audit rows for %s", name)
    return events


def as_log_record(event: AuditEvent) -> dict[str, str]:
    """The fields of a row as the JSON log line carries them (the same names as docs/audit.md)."""
    return {
        "at": event.at.isoformat(),
        "actor": event.actor,
        "via": event.via,
        "action": event.action,
        "name": event.name,
        "subject": event.subject,
        "value_digest": event.value_digest,
        "client_address": event.client_address,
        "result": event.result,
        "reason": event.reason,
    }


def prune(retention_days: int, *, now: datetime | None = None, dry_run: bool = False) -> int:
    """Delete (or, with ``dry_run``, count) the rows older than ``retention_days``."""
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    old = AuditEvent.objects.filter(at__lt=cutoff)
    if dry_run:
        return old.count()
    deleted, _ = old.delete()
    return deleted


class AuditContextMiddleware:
    """Put each request in the acting context: its client address, and its (later) user.

    Must come after ``AuthenticationMiddleware``; DRF's authentication inside the view sets the
    request's user, which :func:`current_actor` reads when a change is recorded.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Run the view inside the request's acting context."""
        address = client_address(request.META)
        with acting(request=request, address=str(address) if address is not None else None):
            return self.get_response(request)
