"""``/update``: publish a value for an account, keeping its two most recent values."""

from __future__ import annotations

import logging

from django.db import OperationalError, connection, transaction
from dns_backends import Deadline

from api.acmedns.errors import ForbiddenError
from api.acmedns.publishing import authorise, publish
from api.backend import request_deadline
from api.models import AcmeDnsAccount

logger = logging.getLogger(__name__)

# As in acme-dns: an order for example.com and *.example.com needs two values at once.
KEPT_VALUES = 2
# PostgreSQL's SQLSTATE for a lock wait cut short by lock_timeout.
_LOCK_NOT_AVAILABLE = "55P03"


def update_txt(account: AcmeDnsAccount, value: str) -> None:
    """Publish ``value`` for the account and withdraw its values older than the two newest.

    One deadline covers the whole update: waiting for the account, then one backend change
    that publishes the new value and withdraws the old ones together (one commit and push for
    git, one UPDATE message for RFC 2136), so the update costs one write, like a present.

    The value is **recorded before it is published**, in a transaction of its own: whenever
    the worker stops (a crash, gunicorn's timeout), every value that may be in DNS is in
    ``txt_values``, so later updates (or the account's deletion) withdraw it. A recorded value
    that never reached DNS costs nothing: withdrawing it is a no-op.

    Publishing happens under the account's row lock, so concurrent updates of one account
    apply one after the other and none is lost or left behind in DNS. An update whose value two
    newer updates have already displaced while it waited answers 200 without publishing it:
    sequentially it would have been published and withdrawn again.

    A failed change publishes nothing and withdraws nothing: the answer is an error, and the
    values stay recorded (the new one may be retried; old ones are withdrawn by a later update).

    Raises:
        ForbiddenError: the account was deleted, or its grant revoked.
        DnsBackendError: the value could not be published (or the deadline ran out).
    """
    deadline = request_deadline()
    with transaction.atomic():
        locked = _lock(account, deadline)
        authorise(locked)
        locked.txt_values = [v for v in locked.txt_values if v != value] + [value]
        locked.save(update_fields=["txt_values", "updated_at"])
    with transaction.atomic():
        locked = _lock(account, deadline)
        if value not in locked.txt_values[-KEPT_VALUES:]:
            logger.info("acme-dns %s: value displaced by newer ones before it was published",
                        locked.username)  # fmt: skip
            return
        authorise(locked)
        # Presented even when already published: an httpreq cleanup of the same direct name
        # may have removed it, and presenting a value already there is a no-op.
        kept = locked.txt_values[-KEPT_VALUES:]
        publish(locked, value, locked.txt_values[:-KEPT_VALUES], deadline)
        locked.txt_values = kept
        locked.save(update_fields=["txt_values", "updated_at"])


def _lock(account: AcmeDnsAccount, deadline: Deadline) -> AcmeDnsAccount:
    """Lock the account's row (not its user's), waiting at most until ``deadline``.

    Raises:
        ForbiddenError: the account no longer exists.
        DeadlineExceededError: another update of the account held it until the deadline.
    """
    if connection.vendor == "postgresql":  # SQLite has no row locks: nothing to wait for
        # Local to the transaction (``true``), which ends within the same deadline: what
        # follows the lock may wait as long as the deadline allows, no longer, so the setting
        # is not restored (a round trip saved).
        milliseconds = max(1, int(deadline.check("waiting for the account") * 1000))
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{milliseconds}ms"])
    try:
        # of=self: the joined user row stays unlocked (the user's other accounts and any
        # change to the user do not wait for this account's DNS write).
        locked = (
            AcmeDnsAccount.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=account.pk)
            .first()
        )
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise deadline.exceeded("waiting for another update of the account") from exc
        raise
    if locked is None:
        raise ForbiddenError()
    return locked
