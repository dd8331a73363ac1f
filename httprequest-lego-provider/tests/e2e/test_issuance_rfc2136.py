"""Certificates issued by pebble through lego, the provider and RFC 2136 updates to BIND.

All orders of the module are started together by the ``orders`` fixture (see
:class:`~tests.e2e.acme.LegoRunner`); each test checks one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from tests.dnsinfra import NamedServer, TsigKey, example_zones
from tests.e2e.acme import LegoResult, LegoRunner, verify_certificate
from tests.e2e.provider import ProviderService

pytestmark = pytest.mark.e2e

PROVIDER_KEY = TsigKey("lego-provider")

ORDERS = {
    "name-and-wildcard": ["www.example.com", "*.www.example.com"],
    "raw-apex-and-wildcard": ["example.com", "*.example.com"],
    "subzone-and-uk-zone": ["host.sub.example.com", "www.example.co.uk"],
    "refused": ["refused.example.com"],
}


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedServer]:
    server = NamedServer(
        tmp_path_factory.mktemp("named"),
        example_zones((f"grant {PROVIDER_KEY.name} zonesub TXT",)),
        keys=(PROVIDER_KEY,),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def provider(
    named: NamedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderService]:
    """The service with the rfc2136 backend, zones discovered from the server."""
    service = ProviderService(
        tmp_path_factory.mktemp("provider"),
        {
            "DJANGO_DNS_BACKEND": "rfc2136",
            "DJANGO_RFC2136_SERVER": named.address,
            "DJANGO_RFC2136_KEY_NAME": PROVIDER_KEY.name,
            "DJANGO_RFC2136_KEY_ALGORITHM": PROVIDER_KEY.algorithm,
            "DJANGO_RFC2136_KEY_SECRET": PROVIDER_KEY.secret,
        },
    )
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def orders(lego: LegoRunner, provider: ProviderService) -> dict[str, Future[LegoResult]]:
    """Start every order of the module at once; each test waits for its own."""
    password = provider.add_user(
        "acme",
        domains="www.example.com,example.com",
        subdomains="sub.example.com,example.co.uk",
    )
    # A user with a grant elsewhere only: the provider must refuse refused.example.com.
    stranger = provider.add_user("stranger", domains="other.example.co.uk")
    return {
        "name-and-wildcard": lego.start(ORDERS["name-and-wildcard"], "acme", password),
        "raw-apex-and-wildcard": lego.start(
            ORDERS["raw-apex-and-wildcard"], "acme", password, raw=True
        ),
        "subzone-and-uk-zone": lego.start(ORDERS["subzone-and-uk-zone"], "acme", password),
        "refused": lego.start(ORDERS["refused"], "stranger", stranger),
    }


def test_name_and_its_wildcard_are_issued_in_one_order(
    orders: dict[str, Future[LegoResult]],
    pebble_root: bytes,
    named: NamedServer,
    provider: ProviderService,
) -> None:
    """Both challenges sit at _acme-challenge.www.example.com at once, then both are removed."""
    result = orders["name-and-wildcard"].result()
    verify_certificate(result, ORDERS["name-and-wildcard"], pebble_root, provider.log())
    assert named.txt("_acme-challenge.www.example.com") == set()


def test_apex_and_wildcard_are_issued_in_raw_mode(
    orders: dict[str, Future[LegoResult]],
    pebble_root: bytes,
    named: NamedServer,
    provider: ProviderService,
) -> None:
    """RAW mode sends domain and keyAuth; the provider derives the name and value itself."""
    result = orders["raw-apex-and-wildcard"].result()
    verify_certificate(result, ORDERS["raw-apex-and-wildcard"], pebble_root, provider.log())
    assert named.txt("_acme-challenge.example.com") == set()


def test_names_in_a_delegated_subzone_and_a_multi_label_zone_are_issued_together(
    orders: dict[str, Future[LegoResult]], pebble_root: bytes, provider: ProviderService
) -> None:
    """Each record lands in its own zone: sub.example.com (delegated) and example.co.uk."""
    result = orders["subzone-and-uk-zone"].result()
    verify_certificate(result, ORDERS["subzone-and-uk-zone"], pebble_root, provider.log())


def test_user_without_a_grant_gets_the_providers_refusal_from_lego(
    orders: dict[str, Future[LegoResult]], named: NamedServer
) -> None:
    result = orders["refused"].result()
    assert result.returncode != 0
    assert "may not manage" in result.output, result.output
    assert named.txt("_acme-challenge.refused.example.com") == set()
