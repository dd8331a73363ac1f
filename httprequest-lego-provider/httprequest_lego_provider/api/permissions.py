"""The one place that decides who may do what: challenge records of a name, other accounts."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Q

from api.models import AccessLevel, DomainUserPermission


def parent_names(domain: str) -> list[str]:
    """Return the strict parents of ``domain``: ``a.b.example.com`` -> b.example.com, ... com."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def may_manage(user: AbstractBaseUser | AnonymousUser, domain: str) -> bool:
    """Return whether ``user`` holds a grant covering ``domain`` (normalised, no dot).

    A ``domain`` grant covers exactly its name; a ``subdomain`` grant covers names strictly
    below it (not the name itself). Comparison is by whole labels, so a grant on
    ``example.com`` never covers ``badexample.com``. One query.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    grants = Q(access_level=AccessLevel.DOMAIN, domain__fqdn=domain)
    parents = parent_names(domain)
    if parents:
        grants |= Q(access_level=AccessLevel.SUBDOMAIN, domain__fqdn__in=parents)
    return DomainUserPermission.objects.filter(grants, user_id=user.pk).exists()


def is_privileged(account: User) -> bool:
    """Whether ``account`` can act on other accounts (staff) or on everything (superuser)."""
    return account.is_staff or account.is_superuser


def may_change_account(actor: User, target: User) -> bool:
    """Return whether ``actor`` may change or delete ``target``.

    Staff manage machine users and grants; only a superuser may change a staff account or a
    superuser (password, flags, deactivation), so a staff account cannot take over a superuser.
    """
    return actor.is_superuser or not is_privileged(target)


def may_grant_privileges(actor: User) -> bool:
    """Return whether ``actor`` may make an account staff or superuser: superusers only."""
    return actor.is_superuser
