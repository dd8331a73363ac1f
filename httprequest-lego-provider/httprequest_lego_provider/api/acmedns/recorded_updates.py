"""An acme-dns ``/update`` as the audit trail sees it: by the account's owner, via acme-dns."""

from __future__ import annotations

from api import audit
from api.acmedns.errors import ForbiddenError
from api.acmedns.updates import update_txt
from api.models import AcmeDnsAccount, AuditAction
from api.recorded_backend import refused


def recorded_update(account: AcmeDnsAccount, value: str) -> None:
    """Run :func:`~api.acmedns.updates.update_txt` for the owner; audit a refusal.

    The backend calls inside are audited by :mod:`api.recorded_backend` (a ``present`` of the
    value, a ``cleanup`` of the oldest beyond two), attributed to the owner, ``via=acme-dns``.

    Raises:
        ForbiddenError: the account was deleted, or its grant revoked (audited as refused).
    """
    with audit.acting(actor=account.user.get_username(), via="acme-dns"):
        try:
            update_txt(account, value)
        except ForbiddenError:
            reason = f"no grant of {account.user.get_username()} covers {account.domain}"
            refused(AuditAction.PRESENT, account.fulldomain, value, reason)
            raise
