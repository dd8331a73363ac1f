"""Slow and idle anonymous clients do not starve the provider as the rock runs it.

Real gunicorn with the server model of ``webserver.json`` (the one the charm and the benchmarks
use), real PostgreSQL and a real local bare git remote. While 50 anonymous connections are held
open (headers or body trickled a byte at a time, or idle after connecting; reopened whenever
the server closes one), lego-like clients present and clean up records: every call must be
answered 200 within the client's timeout of a few seconds. With gunicorn's gthread worker (2 x
8 threads) each trickling connection holds a thread, and these calls time out.
"""

from __future__ import annotations

import base64
import http.client
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from slow_clients import Mode, SlowClients

from tests.dns_backends.contract import token
from tests.e2e.gitzone import git, make_zone_repository
from tests.processes import LOOPBACK, running
from tests.provider_server import ADMIN_URL, ProviderServer, postgresql_database

ROCK_ROOT = Path(__file__).resolve().parents[1]


SLOW_CLIENTS = 50
LEGITIMATE_CALLS = 6
# Long enough for any answer on a busy 2-core machine, short enough that a starved server
# fails the test instead of answering once the slow clients give up.
CLIENT_TIMEOUT_SECONDS = 5
ZONE = "example.com"
ORIGINAL = "; example.com fragment\nwww 600 IN A 192.0.2.10\n"
# What each kind of slow client sends its bytes to: the httpreq endpoint for headers (any
# path is parsed first), the token endpoint for the body (it reads the body of an anonymous
# request), and nothing for idle connections.
TARGETS: dict[Mode, str] = {"headers": "/present", "body": "/api/v1/auth/token/", "idle": "/"}


# The rock's server model; TEST_WEBSERVER_JSON points at another one to compare (a gthread
# model fails these tests).
WEBSERVER_JSON = Path(os.environ.get("TEST_WEBSERVER_JSON", ROCK_ROOT / "webserver.json"))


class Deployment:
    """The running server, a granted machine user and the remote it publishes to."""

    def __init__(self, server: ProviderServer, auth: tuple[str, str], remote: Path) -> None:
        self.server, self.auth, self.remote = server, auth, remote

    def call(self, path: str, name: str, value: str) -> int | str:
        """One lego call on a new connection (as a new client comes): its status or error."""
        try:
            return requests.post(
                self.server.url + path,
                json={"fqdn": name + ".", "value": value},
                auth=self.auth,
                headers={"Connection": "close"},
                timeout=CLIENT_TIMEOUT_SECONDS,
            ).status_code
        except requests.RequestException as exc:
            return type(exc).__name__  # a timeout: the server was starved

    def zone_lines(self) -> list[str]:
        return git("--git-dir", self.remote, "show", f"main:{ZONE}.domain").splitlines()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("slow-clients")
    remote = make_zone_repository(base / "dns.git", {ZONE: ORIGINAL})
    backend_env = {
        "DJANGO_DNS_BACKEND": "git",
        "DJANGO_GIT_REPO": f"file://{remote}@main",
        "DJANGO_GIT_WORKDIR": str(base / "workdir"),
    }
    with postgresql_database() as database:
        server = ProviderServer(
            base / "host", backend_env, database_url=database, webserver=WEBSERVER_JSON
        )
        with running(server):
            password = server.create_user("machine", subdomains=ZONE)
            yield Deployment(server, ("machine", password), remote)


@pytest.mark.parametrize("mode", ["headers", "body", "idle"])
def test_lego_calls_are_answered_while_50_anonymous_slow_clients_hold_connections(
    deployment: Deployment, mode: Mode
) -> None:
    records = [
        (f"_acme-challenge.{mode}{i}.{ZONE}", token(f"{mode}{i}")) for i in range(LEGITIMATE_CALLS)
    ]
    slow = SlowClients(LOOPBACK, deployment.server.port, SLOW_CLIENTS, mode, path=TARGETS[mode])
    with slow:
        time.sleep(1)  # let the workers take the slow connections and start reading them
        presents = [deployment.call("/present", name, value) for name, value in records]
        held = slow.held()
        published = deployment.zone_lines()
        cleanups = [deployment.call("/cleanup", name, value) for name, value in records]

    assert presents == [200] * LEGITIMATE_CALLS, deployment.server.log()
    assert cleanups == [200] * LEGITIMATE_CALLS
    assert held == SLOW_CLIENTS  # the slow clients were still attached after the calls
    for name, value in records:
        assert f'{name.removesuffix("." + ZONE)} 600 IN TXT "{value}"' in published
    assert deployment.zone_lines() == ORIGINAL.splitlines()


IDLE_AUTHENTICATED_CONNECTIONS = 60


def test_idle_client_connections_do_not_each_hold_a_postgresql_session(
    deployment: Deployment,
) -> None:
    """Sessions follow the server's concurrency, not the number of clients' open connections.

    Each connection sends one authenticated request (which queries PostgreSQL) and then stays
    open, idle, as a kept-alive client does. A server that keeps a database session per open
    connection (Django's persistent connections are per thread, and per greenlet under
    gevent) would let anyone with valid or invalid credentials exhaust PostgreSQL's
    connection slots.
    """
    host, port = LOOPBACK, deployment.server.port
    database = deployment.server.env["POSTGRESQL_DB_CONNECT_STRING"].rsplit("/", 1)[1]
    clients = [
        http.client.HTTPConnection(host, port, timeout=CLIENT_TIMEOUT_SECONDS)
        for _ in range(IDLE_AUTHENTICATED_CONNECTIONS)
    ]
    credentials = base64.b64encode(":".join(deployment.auth).encode()).decode()
    try:
        statuses = []
        for client in clients:
            client.request(
                "GET", "/api/v1/users/", headers={"Authorization": f"Basic {credentials}"}
            )
            response = client.getresponse()
            response.read()
            statuses.append(response.status)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
    finally:
        for client in clients:
            client.close()

    assert set(statuses) <= {200, 403}  # answered (a machine user may not list users)
    assert row is not None
    assert row[0] < IDLE_AUTHENTICATED_CONNECTIONS // 2
