"""Concurrent requests through real gunicorn servers sharing one git remote lose nothing.

Two servers (two "hosts", each with its own working clone) of two worker processes each take
40 simultaneous presents; every request must be answered 200 only once its record is pushed.
The reference answered 204 to all 20 of its concurrent requests and kept 3 to 20 records.
"""

from __future__ import annotations

import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.dns_backends.contract import token
from tests.provider_server import (
    create_machine_user,
    gunicorn_server,
    manage,
    postgresql_database,
    provider_environment,
)

ZONE_FILE = "example.com.domain"
ORIGINAL = (
    "; example.com fragment, deployed by the DNS team\n"
    "www 600 IN A 192.0.2.10\n"
    "; ACME challenge records below\n"
)
CLIENTS = 40


def make_remote(tmp_path: Path) -> Path:
    """A bare repository whose main branch holds one zone fragment."""
    remote = tmp_path / "dns.git"
    seed = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / ZONE_FILE).write_text(ORIGINAL)
    git = ["git", "-C", str(seed), "-c", "user.name=t", "-c", "user.email=t@127.0.0.1"]
    subprocess.run([*git, "add", ZONE_FILE], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "seed"], check=True)
    subprocess.run([*git, "push", "-q", str(remote), "main"], check=True)
    return remote


def remote_file(remote: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"main:{ZONE_FILE}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


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
    remote = make_remote(tmp_path)
    with postgresql_database() as database:
        envs = [
            provider_environment(
                database,
                {
                    "DJANGO_DNS_BACKEND": "git",
                    "DJANGO_GIT_REPO": f"file://{remote}@main",
                    "DJANGO_GIT_WORKDIR": str(tmp_path / f"host{i}"),
                    "DJANGO_DATA_DIR": str(tmp_path / f"data{i}"),
                },
            )
            for i in range(2)
        ]
        manage(envs[0], "migrate", "--noinput")
        password = create_machine_user(envs[0], "machine", "--subdomains", "example.com")
        auth = ("machine", password)
        with (
            gunicorn_server(envs[0], log=tmp_path / "host0.log") as url0,
            gunicorn_server(envs[1], log=tmp_path / "host1.log") as url1,
        ):
            records = [
                (f"_acme-challenge.host{i}.example.com", token(str(i))) for i in range(CLIENTS)
            ]

            def calls(path: str) -> list[tuple[str, dict[str, str]]]:
                return [
                    ((url0, url1)[i % 2] + path, {"fqdn": name + ".", "value": value})
                    for i, (name, value) in enumerate(records)
                ]

            assert fire(calls("/present"), auth) == [200] * CLIENTS
            lines = remote_file(remote).splitlines()
            for name, value in records:
                relative = name.removesuffix(".example.com")
                assert f'{relative} 600 IN TXT "{value}"' in lines
            assert len(lines) == len(ORIGINAL.splitlines()) + CLIENTS

            assert fire(calls("/cleanup"), auth) == [200] * CLIENTS
            assert remote_file(remote) == ORIGINAL
