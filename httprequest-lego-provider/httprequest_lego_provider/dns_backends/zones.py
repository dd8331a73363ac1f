"""Zone lookup shared by the backends: the longest managed suffix of a name."""

from __future__ import annotations

from collections.abc import Container


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
