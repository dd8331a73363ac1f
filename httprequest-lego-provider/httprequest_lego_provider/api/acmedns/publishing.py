"""Writing an account's values through the API's DNS backend, for both account styles.

Direct accounts go through :mod:`api.records`, exactly as httpreq does (grant check, backend,
audit log). A delegated account's name, ``<uuid>.<delegation zone>``, is not a challenge name
of any certificate, so it cannot be a :class:`~api.challenges.Challenge`; its grant is checked
on the name it serves (:func:`authorise`) and the value goes to the same backend. Both styles
take the update's one deadline, shared by every backend call the update makes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dns_backends import Deadline

from api.acmedns.errors import ForbiddenError
from api.backend import get_backend, request_deadline
from api.challenges import Challenge
from api.errors import NameNotAllowedError
from api.models import AcmeDnsAccount
from api.permissions import may_manage
from api.recorded_backend import recorded_backend
from api.records import record_present

logger = logging.getLogger(__name__)


def authorise(account: AcmeDnsAccount) -> None:
    """Refuse an account whose user no longer holds a grant for its name (or is inactive).

    Raises:
        ForbiddenError: acme-dns's 401; revoking the grant stops the account.
    """
    if not may_manage(account.user, account.domain):
        logger.info("refused acme-dns %s: %s may not manage %s", account.username,
                    account.user.get_username(), account.domain)  # fmt: skip
        raise ForbiddenError()


def publish(
    account: AcmeDnsAccount, value: str, old_values: Sequence[str], deadline: Deadline
) -> None:
    """Add ``value`` at the account's fulldomain and remove ``old_values``, in one change.

    Returns once the backend made it durable; with old values, one commit or UPDATE message
    holds the new value and the withdrawals (a write, not one per value).
    """
    if account.delegated:
        recorded_backend(get_backend()).present(
            account.fulldomain, value, deadline, withdrawing=old_values
        )
        logger.info("presented %s for %s (acme-dns %s, for %s), withdrew %d older values",
                    account.fulldomain, account.user.get_username(), account.username,
                    account.domain, len(old_values))  # fmt: skip
        return
    try:
        record_present(
            user=account.user,
            challenge=Challenge(account.domain, value),
            deadline=deadline,
            withdrawing=old_values,
        )
    except NameNotAllowedError as exc:
        raise ForbiddenError() from exc


def withdraw_all(account: AcmeDnsAccount) -> None:
    """Remove every value of an account being deleted, whether or not its grant remains.

    Deleting is a staff action on the account itself: the values must go even when the grant
    was revoked first (which is what makes :func:`withdraw` refuse), so this goes to the backend
    without the user's grant check.
    """
    backend, deadline = recorded_backend(get_backend()), request_deadline()
    for value in account.txt_values:
        backend.cleanup(account.fulldomain, value, deadline)
    logger.info("withdrew the values of acme-dns %s (%s)", account.username, account.fulldomain)
