"""Audit rows for grants, accounts and credentials, from the models' own signals.

Every path that changes them (management commands, the admin REST API, the Django admin,
acme-dns registration, cascading deletes) saves or deletes model rows, so receivers here see
them all without each path having to remember the audit. Who made the change and from where
come from the acting context (see :mod:`api.audit`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from api import audit, metrics
from api.models import AcmeDnsAccount, AuditAction, AuditResult, DomainUserPermission

# What a change of an account's row is about: its password, or its status and privileges.
CREDENTIAL_FIELDS = ("password",)
STATUS_FIELDS = ("username", "is_active", "is_staff", "is_superuser")
_BEFORE = "_audit_before"


def _ok(action: AuditAction, name: str, *, subject: str = "", reason: str = "") -> None:
    audit.record(action, name, result=AuditResult.OK, subject=subject, reason=reason)


@receiver(post_save, sender=DomainUserPermission, dispatch_uid="api.audit.grant_saved")
def _grant_saved(*, instance: DomainUserPermission, created: bool, **_: Any) -> None:
    reason = instance.access_level if created else f"changed to {instance.access_level}"
    _ok(AuditAction.GRANT, _fqdn(instance), subject=_owner(instance), reason=reason)


@receiver(post_delete, sender=DomainUserPermission, dispatch_uid="api.audit.grant_deleted")
def _grant_deleted(*, instance: DomainUserPermission, **_: Any) -> None:
    _ok(
        AuditAction.REVOKE, _fqdn(instance), subject=_owner(instance), reason=instance.access_level
    )


def _owner(instance: DomainUserPermission | AcmeDnsAccount) -> str:
    """The owner's username; in a cascade the owner may already be gone from the database."""
    try:
        return str(instance.user.get_username())
    except ObjectDoesNotExist:
        return f"#{instance.user_id}"


def _fqdn(grant: DomainUserPermission) -> str:
    try:
        return grant.domain.fqdn
    except ObjectDoesNotExist:
        return f"#{grant.domain_id}"


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="api.audit.user_before")
def _user_before(*, sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    """Keep the audited fields as stored, unless the save cannot touch them (``last_login``)."""
    tracked = CREDENTIAL_FIELDS + STATUS_FIELDS
    if instance.pk is None or (
        update_fields is not None and not set(update_fields) & set(tracked)
    ):
        setattr(instance, _BEFORE, None)
        return
    before = sender._default_manager.filter(pk=instance.pk).values(*tracked).first()
    setattr(instance, _BEFORE, before)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="api.audit.user_saved")
def _user_saved(*, instance: Any, created: bool, **_: Any) -> None:
    username = instance.get_username()
    if created:
        _ok(AuditAction.ACCOUNT_CREATE, username, subject=username, reason=_privileges(instance))
        return
    before = getattr(instance, _BEFORE, None)
    if not before:
        return
    if before["password"] != instance.password:
        _ok(AuditAction.CREDENTIAL_CHANGE, username, subject=username, reason="password")
    changed = [name for name in STATUS_FIELDS if before[name] != getattr(instance, name)]
    if changed:
        _ok(
            AuditAction.ACCOUNT_CHANGE,
            username,
            subject=username,
            reason=f"{', '.join(changed)}; now {_privileges(instance)}",
        )


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="api.audit.user_deleted")
def _user_deleted(*, instance: Any, **_: Any) -> None:
    username = instance.get_username()
    _ok(AuditAction.ACCOUNT_DELETE, username, subject=username)


def _privileges(user: Any) -> str:
    flags = [name for name in ("is_active", "is_staff", "is_superuser") if getattr(user, name)]
    return " ".join(flags) or "inactive"


@receiver(pre_save, sender=AcmeDnsAccount, dispatch_uid="api.audit.acmedns_before")
def _acmedns_before(
    *, instance: AcmeDnsAccount, update_fields: frozenset[str] | None = None, **_: Any
) -> None:
    before = None
    key_may_change = update_fields is None or "key_hash" in update_fields
    if instance.pk is not None and key_may_change:  # an update's saves skip this query
        before = AcmeDnsAccount.objects.filter(pk=instance.pk).values("key_hash").first()
    setattr(instance, _BEFORE, before)


@receiver(post_save, sender=AcmeDnsAccount, dispatch_uid="api.audit.acmedns_saved")
def _acmedns_saved(*, instance: AcmeDnsAccount, created: bool, **_: Any) -> None:
    owner = _owner(instance)
    if created:
        reason = f"for {instance.domain}" + (" (delegated)" if instance.delegated else "")
        _ok(AuditAction.ACMEDNS_CREATE, instance.fulldomain, subject=owner, reason=reason)
        return
    before = getattr(instance, _BEFORE, None)
    if before and before["key_hash"] != instance.key_hash:
        _ok(AuditAction.CREDENTIAL_CHANGE, instance.fulldomain, subject=owner, reason="api key")


@receiver(post_delete, sender=AcmeDnsAccount, dispatch_uid="api.audit.acmedns_deleted")
def _acmedns_deleted(*, instance: AcmeDnsAccount, **_: Any) -> None:
    _ok(AuditAction.ACMEDNS_DELETE, instance.fulldomain, subject=_owner(instance))


# Failed logins and the backends' push events feed the metrics; connected with these receivers.
metrics.connect()
