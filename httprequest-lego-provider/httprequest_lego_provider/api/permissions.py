"""The one place that decides whether a user may manage the challenge records of a name."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
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
