"""The orders every backend must serve end to end, and the checks each e2e module inherits.

A module provides the ``named``, ``backend_env`` and ``acme_password`` fixtures for its
backend; ``tests/e2e/conftest.py`` starts the provider and pebble, places all of the module's
``issuance_orders`` at once (the ``issuance`` fixture), and a ``Test<Backend>`` subclass of
:class:`IssuanceContract` runs the checks below against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from tests.dnsinfra import NamedServer
from tests.e2e.acme import LegoResult, verify_certificate
from tests.provider_server import ProviderServer


@dataclass(frozen=True)
class Order:
    """A certificate order: its names, the user who places it, and lego's httpreq mode."""

    domains: tuple[str, ...]
    user: str = "acme"
    raw: bool = False

    def challenge_names(self) -> set[str]:
        """Where the DNS-01 records of the order go (a wildcard shares its base name's)."""
        return {f"_acme-challenge.{domain.removeprefix('*.')}" for domain in self.domains}


COMMON_ORDERS = {
    "name-and-wildcard": Order(("www.example.com", "*.www.example.com")),
    "raw-apex-and-wildcard": Order(("example.com", "*.example.com"), raw=True),
    "refused": Order(("refused.example.com",), user="stranger"),
}


@dataclass(frozen=True)
class Issuance:
    """A module's orders, all started at once, and the servers that answer them."""

    orders: Mapping[str, Order]
    runs: Mapping[str, Future[LegoResult]]
    named: NamedServer
    provider: ProviderServer
    pebble_root: bytes

    def result(self, label: str) -> LegoResult:
        """Wait for the order's lego run and return what it did."""
        return self.runs[label].result()

    def assert_no_challenge_left(self, label: str) -> None:
        """No TXT record of the order is served any more: the provider cleaned them all up."""
        for name in self.orders[label].challenge_names():
            assert self.named.txt(name) == set(), name

    def assert_issued(self, label: str) -> None:
        """The certificate chains to pebble's root and names exactly the order's domains."""
        domains = list(self.orders[label].domains)
        verify_certificate(self.result(label), domains, self.pebble_root, self.provider.log())
        self.assert_no_challenge_left(label)


class IssuanceContract:
    """Checks that hold for every backend (the ``issuance`` fixture comes from the conftest)."""

    def test_name_and_its_wildcard_are_issued_in_one_order(self, issuance: Issuance) -> None:
        """Both challenges sit at _acme-challenge.www.example.com at once, then both go."""
        issuance.assert_issued("name-and-wildcard")

    def test_apex_and_wildcard_are_issued_in_raw_mode(self, issuance: Issuance) -> None:
        """RAW mode sends domain and keyAuth; the provider derives the name and value itself."""
        issuance.assert_issued("raw-apex-and-wildcard")

    def test_user_without_a_grant_gets_the_providers_refusal_from_lego(
        self, issuance: Issuance
    ) -> None:
        result = issuance.result("refused")
        assert result.returncode != 0
        assert "may not manage" in result.output, result.output
        issuance.assert_no_challenge_left("refused")
