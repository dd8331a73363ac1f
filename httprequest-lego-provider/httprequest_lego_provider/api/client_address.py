"""Which address a request comes from, and whether a list of networks admits it: one answer.

The login throttle, acme-dns's ``allowfrom`` and the accounts' allowed networks all ask
:func:`client_address`, configured by one variable, ``DJANGO_PROXY_HOPS`` (settings
``CLIENT_ADDRESS``):

- 0 (the default): the connection's peer (``REMOTE_ADDR``); ``X-Forwarded-For`` is ignored,
  since any client can send it.
- N > 0: the N-th entry from the right of ``X-Forwarded-For``. Each trusted proxy appends the
  peer it saw, so the rightmost N entries were written by our proxies and the ones further left
  by the client. Without the header, or when that entry is not an address, the address is
  unknown (``None``): a restricted account refuses it, the throttle counts the peer instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from httprequest_lego_provider.environment import ClientAddressConfig

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# More networks than any deployment needs; bounds the work of every check.
MAX_NETWORKS = 64
# Longer than any CIDR text (an IPv6 address with a prefix is at most 43 characters).
MAX_NETWORK_CHARS = 64


class InvalidNetworksError(ValueError):
    """A network list is not a list of at most MAX_NETWORKS networks in CIDR notation."""


def configured_proxy_hops() -> int:
    """``DJANGO_PROXY_HOPS``, as read into settings once at start."""
    config: ClientAddressConfig = settings.CLIENT_ADDRESS
    return config.proxy_hops


def parse_address(text: object) -> Address | None:
    """The address in ``text`` (an IPv4-mapped IPv6 address as IPv4), else None."""
    try:
        address = ipaddress.ip_address(str(text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(meta: Mapping[str, Any], proxy_hops: int | None = None) -> Address | None:
    """The address ``meta`` (a request's WSGI environ) comes from, or None when unknown.

    ``proxy_hops`` overrides the configured number of trusted proxies (the throttle's
    ``unlock`` and tests); see the module docstring for the rule.
    """
    hops = configured_proxy_hops() if proxy_hops is None else proxy_hops
    if hops <= 0:
        return parse_address(meta.get("REMOTE_ADDR"))
    header = meta.get("HTTP_X_FORWARDED_FOR")
    entries = [e.strip() for e in header.split(",")] if isinstance(header, str) else []
    entries = [entry for entry in entries if entry]
    if not entries:
        return None
    # Fewer entries than proxies: the request skipped the outer ones, and the leftmost entry
    # is what the first proxy it reached saw.
    return parse_address(entries[-min(hops, len(entries))])


def parse_networks(raw: object) -> list[str]:
    """Return a list of networks, normalised (``10.0.0.1/8`` -> ``10.0.0.0/8``), deduplicated.

    Each entry is CIDR notation with a prefix length (host bits are ignored, as acme-dns
    does). An empty list admits every address.

    Raises:
        InvalidNetworksError: not a list of at most MAX_NETWORKS CIDR strings.
    """
    if not isinstance(raw, list) or len(raw) > MAX_NETWORKS:
        raise InvalidNetworksError(f"must be a list of at most {MAX_NETWORKS} networks")
    networks: list[str] = []
    for item in raw:
        if not isinstance(item, str) or "/" not in item or len(item) > MAX_NETWORK_CHARS:
            raise InvalidNetworksError("entries must be networks like 192.0.2.0/24")
        try:
            network = str(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError as exc:
            raise InvalidNetworksError("entries must be networks like 192.0.2.0/24") from exc
        if network not in networks:
            networks.append(network)
    return networks


def split_networks(raw: str) -> list[str]:
    """:func:`parse_networks` of a comma- or line-separated text (command line, admin form)."""
    items = [item.strip() for item in raw.replace("\n", ",").split(",")]
    return parse_networks([item for item in items if item])


def admits(networks: Sequence[str], address: Address | None) -> bool:
    """Whether ``networks`` admit ``address``: every address when empty; never an unknown one."""
    if not networks:
        return True
    if address is None:
        return False  # fail closed: a restricted account never accepts an unknown origin
    return any(address in network for network in _networks(networks))


def _networks(networks: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(network) for network in networks]
