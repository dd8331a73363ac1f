"""Keeping DNS in step when an account goes, or loses the grant its values were published under.

Receivers of the models' own signals, so that every path is covered without each having to
remember: the admin API, the Django admin (one or many), a user's deletion cascading to their
accounts, ``revoke_domains``, a domain deleted with its grants.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver
from dns_backends import DnsBackendError

from api.acmedns.publishing import withdraw_all
from api.models import AcmeDnsAccount, DomainUserPermission
from api.permissions import may_manage

logger = logging.getLogger(__name__)


@receiver(pre_delete, sender=AcmeDnsAccount, dispatch_uid="api.acmedns.withdraw_before_delete")
def _withdraw_before_delete(*, instance: AcmeDnsAccount, **_: Any) -> None:
    """Withdraw an account's values from DNS before its row goes, however it is deleted.

    The row is locked and read again: an update of the account still running finishes first,
    and its value is withdrawn too (later updates find no account). A backend failure stops
    the deletion (it runs in the deletion's transaction, which rolls back) rather than leave
    records in DNS that no account remembers.
    """
    locked = AcmeDnsAccount.objects.select_for_update(of=("self",)).filter(pk=instance.pk)
    account = locked.select_related("user").first()
    if account is not None and account.txt_values:
        withdraw_all(account)


def withdraw_ungranted(user_id: int) -> None:
    """Withdraw the values of ``user_id``'s accounts that no grant covers any more.

    Their updates are refused from then on, so nothing would ever withdraw those values
    otherwise. Best effort: a backend failure is logged and the values stay recorded on the
    account, to be withdrawn when it is deleted; the revocation itself stands either way.
    """
    for pk in AcmeDnsAccount.objects.filter(user_id=user_id).values_list("pk", flat=True):
        with transaction.atomic():
            account = (
                AcmeDnsAccount.objects.select_for_update(of=("self",))
                .select_related("user")
                .filter(pk=pk)
                .first()
            )
            if account is None or not account.txt_values:
                continue
            if may_manage(account.user, account.domain):
                continue
            try:
                withdraw_all(account)
            except DnsBackendError as exc:
                logger.warning("acme-dns %s lost its grant, kept values: %s", account.pk, exc)
                continue
            account.txt_values = []
            account.save(update_fields=["txt_values", "updated_at"])


@receiver(post_delete, sender=DomainUserPermission, dispatch_uid="api.acmedns.grant_deleted")
@receiver(post_save, sender=DomainUserPermission, dispatch_uid="api.acmedns.grant_saved")
def _grant_changed(*, instance: DomainUserPermission, created: bool = False, **_: Any) -> None:
    """After a grant is revoked or changed, once that commits (never waiting for DNS)."""
    if created:
        return  # a new grant only covers more
    user_id = instance.user_id
    transaction.on_commit(lambda: withdraw_ungranted(user_id), robust=True)
