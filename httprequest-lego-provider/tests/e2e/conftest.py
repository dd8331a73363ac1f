"""Fixtures shared by the end-to-end modules: pebble in front of the module's BIND server.

Each test module provides a module-scoped ``named`` (its zones) and ``provider`` (the service
configured for its backend); pebble validates against that ``named``. The servers are shared by
the tests of a module because issuance, not start-up, is what takes time.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.dnsinfra import NamedServer
from tests.e2e.acme import LegoRunner, Pebble
from tests.e2e.provider import ProviderService


@pytest.fixture(scope="module")
def pebble(named: NamedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    server = Pebble(tmp_path_factory.mktemp("pebble"), named.address)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pebble_root(pebble: Pebble) -> bytes:
    """The root pebble issues under; a certificate must chain to it."""
    return pebble.issuing_root()


@pytest.fixture(scope="module")
def lego(
    pebble: Pebble,
    named: NamedServer,
    provider: ProviderService,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LegoRunner]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield LegoRunner(
            pebble, named.address, provider.endpoint, tmp_path_factory.mktemp("lego"), pool
        )
