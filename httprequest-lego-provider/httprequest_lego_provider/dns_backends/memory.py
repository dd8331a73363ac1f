"""An in-process backend for development and tests; it publishes nothing anywhere."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from dns_backends.base import ZoneNotFoundError
from dns_backends.deadline import Deadline
from dns_backends.zones import dns_name, find_zone


class MemoryBackend:
    """Keeps TXT values per zone in dicts, with the same zone rules as the real backends."""

    def __init__(self, zones: Iterable[str]) -> None:
        self._zones = frozenset(z.lower().rstrip(".") for z in zones)
        self._records: dict[str, dict[str, set[str]]] = {zone: {} for zone in self._zones}
        self._lock = threading.Lock()

    def _zone(self, fqdn: str) -> str:
        dns_name(fqdn)  # refuse what a real zone could not hold
        zone = find_zone(fqdn, self._zones)
        if zone is None:
            raise ZoneNotFoundError(fqdn)
        return zone

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Add the value beside the others at that name, in the name's zone."""
        zone = self._zone(fqdn)
        with self._lock:
            self._records[zone].setdefault(fqdn, set()).add(value)

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Remove only that value."""
        zone = self._zone(fqdn)
        with self._lock:
            self._records[zone].get(fqdn, set()).discard(value)

    def replace(
        self,
        fqdn: str,
        value: str,
        old_values: Sequence[str],
        deadline: Deadline | None = None,
    ) -> None:
        """Add the value and remove the old ones under one lock."""
        zone = self._zone(fqdn)
        with self._lock:
            values = self._records[zone].setdefault(fqdn, set())
            values.difference_update(old_values)
            values.add(value)

    def values(self, fqdn: str) -> set[str]:
        """Return a copy of the values at ``fqdn`` in its zone (none outside every zone)."""
        zone = find_zone(fqdn, self._zones)
        return set() if zone is None else self.zone_values(zone, fqdn)

    def zone_values(self, zone: str, fqdn: str) -> set[str]:
        """Return what the zone ``zone`` itself holds at ``fqdn``, as its zone file would."""
        with self._lock:
            return set(self._records.get(zone, {}).get(fqdn, set()))


def from_env(
    environ: Mapping[str, str],
    *,
    data_dir: Path | None = None,  # noqa: ARG001 - every backend's factory takes it
) -> MemoryBackend:
    """Zones from ``DJANGO_MEMORY_ZONES`` (comma-separated); nothing is kept in ``data_dir``."""
    raw = environ.get("DJANGO_MEMORY_ZONES", "")
    return MemoryBackend(z.strip() for z in raw.split(",") if z.strip())
