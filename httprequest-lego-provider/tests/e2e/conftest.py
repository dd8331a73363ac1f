"""Fixtures shared by the end-to-end modules: the provider, pebble, lego and the orders.

Each test module provides a module-scoped ``named`` (its zones), ``backend_env`` (the
provider's DNS backend variables) and ``acme_password`` (the user ``acme`` with the module's
grants); pebble validates against that ``named``. The servers are shared by the tests of a
module because issuance, not start-up, is what takes time.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.dnsinfra import NamedServer
from tests.e2e.acme import LegoRunner, Pebble
from tests.e2e.issuance import COMMON_ORDERS, Issuance, Order
from tests.processes import running
from tests.provider_server import ProviderServer


@pytest.fixture(scope="module")
def provider(
    backend_env: Mapping[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderServer]:
    """The service configured for the module's backend, on SQLite in its own folder."""
    with running(ProviderServer(tmp_path_factory.mktemp("provider"), backend_env)) as server:
        yield server


@pytest.fixture(scope="module")
def pebble(named: NamedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with running(Pebble(tmp_path_factory.mktemp("pebble"), named.address)) as server:
        yield server


@pytest.fixture(scope="module")
def pebble_root(pebble: Pebble) -> bytes:
    """The root pebble issues under; a certificate must chain to it."""
    return pebble.issuing_root()


@pytest.fixture(scope="module")
def lego(
    pebble: Pebble,
    named: NamedServer,
    provider: ProviderServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LegoRunner]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield LegoRunner(
            pebble, named.address, provider.url, tmp_path_factory.mktemp("lego"), pool
        )


@pytest.fixture(scope="module")
def issuance_orders() -> Mapping[str, Order]:
    """The orders a module places; a module adds its own by overriding this fixture."""
    return COMMON_ORDERS


@pytest.fixture(scope="module")
def issuance(
    lego: LegoRunner,
    named: NamedServer,
    provider: ProviderServer,
    pebble_root: bytes,
    acme_password: str,
    issuance_orders: Mapping[str, Order],
) -> Issuance:
    """Start every order of the module at once; each test waits for its own."""
    # A user with a grant elsewhere only: the provider must refuse its orders. Its password is
    # an operator's own, starting with "-": lego's refusal shows it was set and accepted.
    stranger = "-" + secrets.token_urlsafe(24)
    provider.create_user("stranger", stranger, domains="www.example.org")
    passwords = {"acme": acme_password, "stranger": stranger}
    runs = {
        label: lego.start(list(order.domains), order.user, passwords[order.user], raw=order.raw)
        for label, order in issuance_orders.items()
    }
    return Issuance(issuance_orders, runs, named, provider, pebble_root)
