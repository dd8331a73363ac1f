"""Names shared by the backends: what DNS can hold, and the longest managed suffix of a name."""

from __future__ import annotations

from collections.abc import Container

import dns.exception
import dns.name

from dns_backends.base import InvalidRecordError


def dns_name(fqdn: str) -> dns.name.Name:
    """Return ``fqdn`` as an absolute DNS name, refusing one that DNS cannot hold.

    Raises:
        InvalidRecordError: the name is longer than 253 characters, has an empty label or one
            longer than 63 characters.
    """
    try:
        return dns.name.from_text(fqdn.rstrip(".") + ".")
    except dns.exception.DNSException as exc:
        raise InvalidRecordError(
            "the name cannot be held in DNS (at most 253 characters, labels of 1 to 63)"
        ) from exc


def suffixes(fqdn: str) -> list[str]:
    """Return ``fqdn`` and each parent name, longest first (``a.b.c`` -> a.b.c, b.c, c)."""
    labels = fqdn.rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def find_zone(fqdn: str, zones: Container[str]) -> str | None:
    """Return the longest suffix of ``fqdn`` (itself included) that is in ``zones``."""
    for candidate in suffixes(fqdn.lower()):
        if candidate in zones:
            return candidate
    return None


def relative_name(fqdn: str, zone: str) -> str:
    """Return ``fqdn`` relative to ``zone`` (``@`` for the apex), as a zone file writes it."""
    if fqdn == zone:
        return "@"
    return fqdn[: -(len(zone) + 1)]
