"""An in-process backend for development and tests; it publishes nothing anywhere."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from dns_backends.base import ZoneNotFoundError
from dns_backends.zones import find_zone


class MemoryBackend:
    """Keeps TXT values in a dict, with the same zone rules as the real backends."""

    def __init__(self, zones: Iterable[str]) -> None:
        self._zones = frozenset(z.lower().rstrip(".") for z in zones)
        self._records: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def _check_zone(self, fqdn: str) -> None:
        if find_zone(fqdn, self._zones) is None:
            raise ZoneNotFoundError(fqdn)

    def present(self, fqdn: str, value: str) -> None:
        """Add the value beside the others at that name."""
        self._check_zone(fqdn)
        with self._lock:
            self._records.setdefault(fqdn, set()).add(value)

    def cleanup(self, fqdn: str, value: str) -> None:
        """Remove only that value."""
        self._check_zone(fqdn)
        with self._lock:
            self._records.get(fqdn, set()).discard(value)

    def values(self, fqdn: str) -> set[str]:
        """Return a copy of the values at ``fqdn``."""
        with self._lock:
            return set(self._records.get(fqdn, set()))


def from_env(environ: Mapping[str, str]) -> MemoryBackend:
    """Zones from ``DJANGO_MEMORY_ZONES`` (comma-separated)."""
    raw = environ.get("DJANGO_MEMORY_ZONES", "")
    return MemoryBackend(z.strip() for z in raw.split(",") if z.strip())
