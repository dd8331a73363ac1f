"""Creating, changing and deleting acme-dns accounts (register, the command, the admin API)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from api.acmedns.config import AcmeDnsConfig
from api.acmedns.credentials import new_key
from api.acmedns.errors import AccountRequestError
from api.acmedns.networks import parse_allowfrom
from api.models import AcmeDnsAccount
from api.names import InvalidNameError, challenge_name, normalise_domain
from api.permissions import may_change_account, may_manage


@dataclass(frozen=True)
class NewAccount:
    """A created account and its key: the only time the key exists outside the client."""

    account: AcmeDnsAccount
    key: str

    def register_answer(self) -> dict[str, object]:
        """acme-dns's ``/register`` answer, plus the owner, name and style (our extension)."""
        account = self.account
        return {
            "username": str(account.username),
            "password": self.key,
            "fulldomain": account.fulldomain,
            "subdomain": str(account.subdomain),
            "allowfrom": list(account.allowfrom),
            "user": account.user.get_username(),
            "domain": account.domain,
            "delegated": account.delegated,
        }

    def storage(self, server_url: str | None) -> dict[str, dict[str, str]]:
        """The account file lego and cert-manager read: ``{"<name>": {...}}``."""
        account = self.account
        entry = {
            "fulldomain": account.fulldomain,
            "subdomain": str(account.subdomain),
            "username": str(account.username),
            "password": self.key,
        }
        if server_url:
            entry["server_url"] = server_url
        return {account.domain: entry}


def _owner(username: object) -> User:
    """The user the account acts for; the message never repeats what the client sent."""
    if not isinstance(username, str) or not username or len(username) > 150:
        raise AccountRequestError("user must be the username of an existing user")
    try:
        user: User = get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise AccountRequestError("user: no user has that username") from None
    return user


def _domain(name: object) -> str:
    if not isinstance(name, str):
        raise AccountRequestError("domain must be a domain name, like example.com")
    try:
        return normalise_domain(name.removeprefix("*."))
    except InvalidNameError as exc:
        raise AccountRequestError(f"domain {exc}") from exc


@transaction.atomic
def create_account(
    username: object,
    domain: object,
    *,
    delegated: bool,
    allowfrom: object,
    config: AcmeDnsConfig,
    actor: User | None = None,
) -> NewAccount:
    """Create an account for ``username``'s name ``domain``.

    Direct accounts publish at ``_acme-challenge.<domain>`` itself (a zone the backend
    manages); delegated ones at ``<subdomain>.<config.zone>``, which the user's
    ``_acme-challenge.<domain>`` CNAME points at. ``actor`` is the staff member asking (None
    for the command line): as for every account change, only a superuser may act for a staff
    account or a superuser.

    Raises:
        AccountRequestError: unknown user, bad name, no grant for it, no delegation zone.
        InvalidAllowfromError: an allowfrom entry is not CIDR.
    """
    networks = parse_allowfrom(allowfrom)
    user = _owner(username)
    name = _domain(domain)
    if actor is not None and not may_change_account(actor, user):
        raise AccountRequestError(f"only a superuser may create accounts for {user.username}")
    if not user.is_active:
        raise AccountRequestError(f"user {user.username} is inactive")
    if not may_manage(user, name):
        raise AccountRequestError(f"user {user.username} holds no grant covering {name}")
    subdomain = uuid.uuid4()
    if delegated:
        if config.zone is None:
            raise AccountRequestError(
                "delegated accounts need a delegation zone: set DJANGO_ACMEDNS_ZONE"
            )
        fulldomain = f"{subdomain}.{config.zone}"
    else:
        fulldomain = challenge_name(name)
    key, key_hash = new_key()
    account = AcmeDnsAccount.objects.create(
        username=uuid.uuid4(),
        key_hash=key_hash,
        subdomain=subdomain,
        user=user,
        domain=name,
        delegated=delegated,
        fulldomain=fulldomain,
        allowfrom=networks,
    )
    return NewAccount(account, key)


def set_allowfrom(account: AcmeDnsAccount, allowfrom: object) -> AcmeDnsAccount:
    """Replace the account's networks (staff); the next update is judged by the new ones."""
    account.allowfrom = parse_allowfrom(allowfrom)
    account.save(update_fields=["allowfrom", "updated_at"])
    return account


def delete_account(account: AcmeDnsAccount) -> None:
    """Delete the account (its key stops working), its values withdrawn from DNS first.

    The withdrawal is :mod:`api.acmedns.lifecycle`'s, which every deletion goes through.
    """
    AcmeDnsAccount.objects.filter(pk=account.pk).delete()
