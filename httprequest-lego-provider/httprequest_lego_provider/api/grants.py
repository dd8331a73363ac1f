"""Granting and revoking domains: the logic behind the management commands (and actions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from api.models import AccessLevel, Domain, DomainUserPermission
from api.names import InvalidNameError, normalise_domain


class GrantError(Exception):
    """A grant could not be changed; the message is for the operator."""


@dataclass(frozen=True)
class Grant:
    """One line of ``list_domains``."""

    username: str
    domain: str
    access_level: str

    def __str__(self) -> str:
        return f"{self.username} {self.access_level} {self.domain}"


def split_names(raw: str | None) -> list[str]:
    """Parse a comma-separated list of domain names, normalised; empty items are ignored.

    Raises:
        GrantError: a name is not a valid domain name.
    """
    names = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            names.append(normalise_domain(item))
        except InvalidNameError as exc:
            raise GrantError(f"{item!r} {exc}") from exc
    return names


def get_user(username: str) -> User:
    """Return the user or raise GrantError naming it."""
    try:
        user: User = get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist as exc:
        raise GrantError(f"no user named {username!r}") from exc
    return user


def _levels(domains: Iterable[str], subdomains: Iterable[str]) -> list[tuple[str, AccessLevel]]:
    return [(d, AccessLevel.DOMAIN) for d in domains] + [
        (s, AccessLevel.SUBDOMAIN) for s in subdomains
    ]


@transaction.atomic
def allow(username: str, domains: Iterable[str], subdomains: Iterable[str]) -> list[Grant]:
    """Grant ``username`` the names; already-held grants are kept. Returns the new grants."""
    user = get_user(username)
    created = []
    for name, level in _levels(domains, subdomains):
        domain, _ = Domain.objects.get_or_create(fqdn=name)
        _, new = DomainUserPermission.objects.get_or_create(
            user=user, domain=domain, access_level=level
        )
        if new:
            created.append(Grant(username, name, level))
    return created


@transaction.atomic
def revoke(username: str, domains: Iterable[str], subdomains: Iterable[str]) -> list[Grant]:
    """Withdraw the grants; names not granted are ignored. Returns the revoked grants."""
    user = get_user(username)
    revoked = []
    for name, level in _levels(domains, subdomains):
        deleted, _ = DomainUserPermission.objects.filter(
            user=user, domain__fqdn=name, access_level=level
        ).delete()
        if deleted:
            revoked.append(Grant(username, name, level))
    return revoked


def list_grants(username: str) -> list[Grant]:
    """Return the grants of ``username``, or of every user for ``*``."""
    grants = DomainUserPermission.objects.select_related("user", "domain")
    if username != "*":
        grants = grants.filter(user=get_user(username))
    return [Grant(g.user.username, g.domain.fqdn, g.access_level) for g in grants]
