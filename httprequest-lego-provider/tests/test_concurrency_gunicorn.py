"""Concurrent requests through real gunicorn servers sharing one git remote lose nothing.

Two servers (two "hosts", each with its own working clone) of two worker processes each take
40 simultaneous presents; every request must be answered 200 only once its record is pushed.
The reference answered 204 to all 20 of its concurrent requests and kept 3 to 20 records.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.dns_backends.contract import token
from tests.e2e.gitzone import git, make_zone_repository
from tests.processes import running
from tests.provider_server import ProviderServer, postgresql_database

ZONE = "example.com"
ORIGINAL = (
    "; example.com fragment, deployed by the DNS team\n"
    "www 600 IN A 192.0.2.10\n"
    "; ACME challenge records below\n"
)
CLIENTS = 40


def remote_file(remote: Path) -> str:
    """The zone fragment on the remote's main branch."""
    return git("--git-dir", remote, "show", f"main:{ZONE}.domain")


def fire(calls: list[tuple[str, dict[str, str]]], auth: tuple[str, str]) -> list[int]:
    """POST every call at once (released together by a barrier); return the statuses."""
    barrier = threading.Barrier(len(calls))

    def post(call: tuple[str, dict[str, str]]) -> int:
        url, body = call
        barrier.wait()
        return requests.post(url, json=body, auth=auth, timeout=120).status_code

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(post, calls))


def test_concurrent_presents_on_two_servers_all_land_and_cleanups_restore_the_zone(
    tmp_path: Path,
) -> None:
    remote = make_zone_repository(tmp_path / "dns.git", {ZONE: ORIGINAL})
    backend_env = {"DJANGO_DNS_BACKEND": "git", "DJANGO_GIT_REPO": f"file://{remote}@main"}
    with postgresql_database() as database:
        hosts = [
            ProviderServer(tmp_path / f"host{i}", backend_env, database_url=database)
            for i in range(2)
        ]
        with running(hosts[0]), running(hosts[1]):
            auth = ("machine", hosts[0].create_user("machine", subdomains="example.com"))

            def logs() -> str:
                return "\n".join(host.log() for host in hosts)

            records = [
                (f"_acme-challenge.host{i}.example.com", token(str(i))) for i in range(CLIENTS)
            ]

            def calls(path: str) -> list[tuple[str, dict[str, str]]]:
                return [
                    (hosts[i % 2].url + path, {"fqdn": name + ".", "value": value})
                    for i, (name, value) in enumerate(records)
                ]

            assert fire(calls("/present"), auth) == [200] * CLIENTS, logs()
            lines = remote_file(remote).splitlines()
            for name, value in records:
                relative = name.removesuffix(".example.com")
                assert f'{relative} 600 IN TXT "{value}"' in lines
            assert len(lines) == len(ORIGINAL.splitlines()) + CLIENTS

            assert fire(calls("/cleanup"), auth) == [200] * CLIENTS, logs()
            assert remote_file(remote) == ORIGINAL
