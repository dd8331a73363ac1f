"""Certificates issued by pebble through lego, the provider and RFC 2136 updates to BIND.

All orders of the module are started together by the ``issuance`` fixture (see
:mod:`tests.e2e.issuance`); each test checks one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from tests.dnsinfra import NamedServer, TsigKey, example_zones
from tests.e2e.issuance import COMMON_ORDERS, Issuance, IssuanceContract, Order
from tests.processes import running
from tests.provider_server import ProviderServer

pytestmark = pytest.mark.e2e

PROVIDER_KEY = TsigKey("lego-provider")


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedServer]:
    """BIND with dynamic zones the provider's key may update (TXT records only)."""
    zones = example_zones((f"grant {PROVIDER_KEY.name} zonesub TXT",))
    directory = tmp_path_factory.mktemp("named")
    with running(NamedServer(directory, zones, keys=(PROVIDER_KEY,))) as server:
        yield server


@pytest.fixture(scope="module")
def backend_env(named: NamedServer) -> dict[str, str]:
    """The rfc2136 backend; the provider discovers the zones from the server."""
    return {
        "DJANGO_DNS_BACKEND": "rfc2136",
        "DJANGO_RFC2136_SERVER": named.address,
        "DJANGO_RFC2136_KEY_NAME": PROVIDER_KEY.name,
        "DJANGO_RFC2136_KEY_ALGORITHM": PROVIDER_KEY.algorithm,
        "DJANGO_RFC2136_KEY_SECRET": PROVIDER_KEY.secret,
    }


@pytest.fixture(scope="module")
def acme_password(provider: ProviderServer) -> str:
    return provider.create_user(
        "acme", domains="www.example.com,example.com", subdomains="sub.example.com,example.co.uk"
    )


@pytest.fixture(scope="module")
def issuance_orders() -> Mapping[str, Order]:
    return {
        **COMMON_ORDERS,
        "subzone-and-uk-zone": Order(("host.sub.example.com", "www.example.co.uk")),
    }


class TestRfc2136Backend(IssuanceContract):
    """The orders every backend must serve, through dynamic updates."""


def test_names_in_a_delegated_subzone_and_a_multi_label_zone_are_issued_together(
    issuance: Issuance,
) -> None:
    """Each record lands in its own zone: sub.example.com (delegated) and example.co.uk."""
    issuance.assert_issued("subzone-and-uk-zone")
