from __future__ import annotations

import pytest
from dns_backends.memory import MemoryBackend, from_env

from tests.dns_backends.contract import CONTRACT_ZONES, DnsBackendContract, ZoneTxt


class TestMemoryBackend(DnsBackendContract):
    @pytest.fixture
    def backend(self) -> MemoryBackend:
        return MemoryBackend(CONTRACT_ZONES)

    @pytest.fixture
    def zone_txt(self, backend: MemoryBackend) -> ZoneTxt:
        return backend.zone_values


def test_from_env_reads_comma_separated_zones() -> None:
    backend = from_env({"DJANGO_MEMORY_ZONES": "example.com, Example.ORG."})
    backend.present("_acme-challenge.example.org", "v" * 43)
    assert backend.values("_acme-challenge.example.org") == {"v" * 43}
