"""Certificates issued through the provider's git backend and a hook-deployed BIND zone.

The provider pushes to a bare repository over SSH (the production transport: a local path
would bypass git's hooks); the repository's post-receive hook renders the zone fragments into
named's zone files and reloads them (see :mod:`tests.e2e.gitzone`). All orders start together
in the ``orders`` fixture; each test checks one of them.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from tests.dns_backends.contract import token
from tests.dnsinfra import LOOPBACK, NamedServer, Zone
from tests.e2e.acme import LegoResult, LegoRunner, verify_certificate
from tests.e2e.gitzone import git, install_deploy_hook, make_zone_repository
from tests.e2e.provider import ProviderService
from tests.sshd import SshServer, running_sshd

pytestmark = pytest.mark.e2e

ZONE = "example.com"
FRAGMENT = f"; {ZONE}: records only, the deploy hook adds SOA and NS\nwww 600 IN A {LOOPBACK}\n"

ORDERS = {
    "name-and-wildcard": ["www.example.com", "*.www.example.com"],
    "raw-apex-and-wildcard": ["example.com", "*.example.com"],
    "refused": ["refused.example.com"],
}


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedServer]:
    """BIND with a static zone: it changes only when the hook deploys the repository."""
    server = NamedServer(
        tmp_path_factory.mktemp("named"),
        (Zone(ZONE, records=tuple(FRAGMENT.splitlines()), dynamic=False),),
        keys=(),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="module")
def zone_repository(named: NamedServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = make_zone_repository(
        tmp_path_factory.mktemp("git") / "zones.git", {ZONE: FRAGMENT}
    )
    install_deploy_hook(repository, named, [ZONE])
    return repository


@pytest.fixture(scope="module")
def provider(
    sshd: SshServer, zone_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderService]:
    """The service with the git backend, pushing over SSH to the zone repository."""
    service = ProviderService(
        tmp_path_factory.mktemp("provider"),
        {
            "DJANGO_DNS_BACKEND": "git",
            "DJANGO_GIT_REPO": sshd.url(zone_repository, "main"),
            "DJANGO_GIT_SSH_KEY": sshd.client_key,
            "DJANGO_GIT_KNOWN_HOSTS": sshd.known_hosts,
        },
    )
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def password(provider: ProviderService) -> str:
    return provider.add_user("acme", domains="www.example.com,example.com,live.example.com")


@pytest.fixture(scope="module")
def orders(
    lego: LegoRunner, provider: ProviderService, password: str
) -> dict[str, Future[LegoResult]]:
    """Start every order of the module at once: their pushes race for the one zone file."""
    stranger = provider.add_user("stranger", domains="www.example.org")
    return {
        "name-and-wildcard": lego.start(ORDERS["name-and-wildcard"], "acme", password),
        "raw-apex-and-wildcard": lego.start(
            ORDERS["raw-apex-and-wildcard"], "acme", password, raw=True
        ),
        "refused": lego.start(ORDERS["refused"], "stranger", stranger),
    }


def post(provider: ProviderService, path: str, password: str, body: dict[str, str]) -> int:
    """POST a challenge as lego does (JSON, basic auth); return the status."""
    credentials = base64.b64encode(f"acme:{password}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        f"{provider.endpoint}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {credentials}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        status: int = response.status
        return status


def test_record_is_served_as_soon_as_present_answers(
    provider: ProviderService, password: str, named: NamedServer, zone_repository: Path
) -> None:
    """The push returns after the hook deployed the zone, so no propagation wait is needed."""
    fqdn = "_acme-challenge.live.example.com"
    body = {"fqdn": f"{fqdn}.", "value": token("live")}
    assert post(provider, "/present", password, body) == 200
    assert named.txt(fqdn) == {token("live")}
    assert f'_acme-challenge.live 600 IN TXT "{token("live")}"' in git(
        "--git-dir", zone_repository, "show", f"main:{ZONE}.domain"
    )
    assert post(provider, "/cleanup", password, body) == 200
    assert named.txt(fqdn) == set()


def test_name_and_its_wildcard_are_issued_in_one_order(
    orders: dict[str, Future[LegoResult]], pebble_root: bytes, provider: ProviderService
) -> None:
    result = orders["name-and-wildcard"].result()
    verify_certificate(result, ORDERS["name-and-wildcard"], pebble_root, provider.log())


def test_apex_and_wildcard_are_issued_in_raw_mode(
    orders: dict[str, Future[LegoResult]], pebble_root: bytes, provider: ProviderService
) -> None:
    result = orders["raw-apex-and-wildcard"].result()
    verify_certificate(result, ORDERS["raw-apex-and-wildcard"], pebble_root, provider.log())


def test_user_without_a_grant_gets_the_providers_refusal_from_lego(
    orders: dict[str, Future[LegoResult]],
) -> None:
    result = orders["refused"].result()
    assert result.returncode != 0
    assert "may not manage" in result.output, result.output


def test_every_challenge_record_is_removed_from_the_repository_and_the_zone(
    orders: dict[str, Future[LegoResult]], zone_repository: Path, named: NamedServer
) -> None:
    """After all orders (concurrent pushes to one file) the fragment is back to the DNS team's."""
    for order in orders.values():
        order.result()
    assert git("--git-dir", zone_repository, "show", f"main:{ZONE}.domain") == FRAGMENT
    for name in ("www.example.com", "example.com"):
        assert named.txt(f"_acme-challenge.{name}") == set()
