"""acme-dns's ``allowfrom``: the service's one network rule, with acme-dns's error code.

The client address and the network checks are :mod:`api.client_address`'s, shared with the
login throttle and the accounts' allowed networks (one setting, ``DJANGO_PROXY_HOPS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api import client_address as addresses
from api.acmedns.errors import InvalidAllowfromError
from api.client_address import MAX_NETWORKS, Address, admits
from api.machine_scope import scope_admits
from api.models import AcmeDnsAccount

__all__ = [
    "MAX_NETWORKS",
    "account_admits",
    "admits",
    "client_address",
    "parse_allowfrom",
    "split_allowfrom",
]


def parse_allowfrom(raw: object) -> list[str]:
    """:func:`api.client_address.parse_networks`, failing with acme-dns's error.

    Raises:
        InvalidAllowfromError: not a list of at most MAX_NETWORKS CIDR strings.
    """
    try:
        return addresses.parse_networks(raw)
    except addresses.InvalidNetworksError as exc:
        raise InvalidAllowfromError(f"allowfrom {exc}") from exc


def split_allowfrom(raw: str) -> list[str]:
    """Parse the command line's comma-separated form of :func:`parse_allowfrom`."""
    try:
        return addresses.split_networks(raw)
    except addresses.InvalidNetworksError as exc:
        raise InvalidAllowfromError(f"allowfrom {exc}") from exc


def client_address(meta: Mapping[str, Any]) -> Address | None:
    """:func:`api.client_address.client_address` (the service's one rule, DJANGO_PROXY_HOPS)."""
    return addresses.client_address(meta)


def account_admits(account: AcmeDnsAccount, address: Address | None) -> bool:
    """Whether ``account`` may update from ``address``.

    Both the account's ``allowfrom`` and its user's machine-credential scope (allowed
    networks, expiry; :mod:`api.machine_scope`) must admit it.
    """
    return admits(account.allowfrom, address) and scope_admits(account.user, address)
