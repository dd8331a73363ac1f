"""Certificates issued through the provider's git backend and a hook-deployed BIND zone.

The provider pushes to a bare repository over SSH (the production transport: a local path
would bypass git's hooks); the repository's post-receive hook renders the zone fragments into
named's zone files and reloads them (see :mod:`tests.e2e.gitzone`). All orders start together
in the ``issuance`` fixture (see :mod:`tests.e2e.issuance`); each test checks one of them.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_backends.contract import token
from tests.dnsinfra import LOOPBACK, NamedServer, Zone
from tests.e2e.gitzone import git, install_deploy_hook, make_zone_repository
from tests.e2e.issuance import Issuance, IssuanceContract
from tests.processes import running
from tests.provider_server import ProviderServer
from tests.sshd import SshServer, running_sshd

pytestmark = pytest.mark.e2e

ZONE = "example.com"
FRAGMENT = f"; {ZONE}: records only, the deploy hook adds SOA and NS\nwww 600 IN A {LOOPBACK}\n"


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedServer]:
    """BIND with a static zone: it changes only when the hook deploys the repository."""
    zone = Zone(ZONE, records=tuple(FRAGMENT.splitlines()), dynamic=False)
    with running(NamedServer(tmp_path_factory.mktemp("named"), (zone,), keys=())) as server:
        yield server


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
def backend_env(sshd: SshServer, zone_repository: Path) -> dict[str, str]:
    """The git backend, pushing over SSH to the zone repository."""
    return {
        "DJANGO_DNS_BACKEND": "git",
        "DJANGO_GIT_REPO": sshd.url(zone_repository, "main"),
        "DJANGO_GIT_SSH_KEY": sshd.client_key,
        "DJANGO_GIT_KNOWN_HOSTS": sshd.known_hosts,
    }


@pytest.fixture(scope="module")
def acme_password(provider: ProviderServer) -> str:
    return provider.create_user("acme", domains="www.example.com,example.com,live.example.com")


def post(provider: ProviderServer, path: str, password: str, body: dict[str, str]) -> int:
    """POST a challenge as lego does (JSON, basic auth); return the status."""
    credentials = base64.b64encode(f"acme:{password}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        f"{provider.url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {credentials}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        status: int = response.status
        return status


def test_record_is_served_as_soon_as_present_answers(
    provider: ProviderServer, acme_password: str, named: NamedServer, zone_repository: Path
) -> None:
    """The push returns after the hook deployed the zone, so no propagation wait is needed."""
    fqdn = "_acme-challenge.live.example.com"
    body = {"fqdn": f"{fqdn}.", "value": token("live")}
    assert post(provider, "/present", acme_password, body) == 200
    assert named.txt(fqdn) == {token("live")}
    assert f'_acme-challenge.live 600 IN TXT "{token("live")}"' in git(
        "--git-dir", zone_repository, "show", f"main:{ZONE}.domain"
    )
    assert post(provider, "/cleanup", acme_password, body) == 200
    assert named.txt(fqdn) == set()


class TestGitBackend(IssuanceContract):
    """The orders every backend must serve, each record pushed and deployed by the hook."""


def test_every_challenge_record_is_removed_from_the_repository_and_the_zone(
    issuance: Issuance, zone_repository: Path
) -> None:
    """After all orders (concurrent pushes to one file) the fragment is back to the DNS team's."""
    for label in issuance.orders:
        issuance.result(label)
        issuance.assert_no_challenge_left(label)
    assert git("--git-dir", zone_repository, "show", f"main:{ZONE}.domain") == FRAGMENT
