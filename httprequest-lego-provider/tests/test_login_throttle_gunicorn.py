"""The login throttle is shared by every worker of every unit: two gunicorn servers, one database.

Two real servers (two "units" of two worker processes each, as the rock runs them) share one
PostgreSQL database, the production hashers and the throttle limits from the environment.
Concurrent failures on both are all counted, a lockout reached through one is enforced by the
other, and lego's machine account (a generated password) keeps working throughout.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests

from tests.processes import running
from tests.provider_server import ProviderServer, postgresql_database

PER_USERNAME = 8
CONCURRENT = 6
HUMAN_PASSWORD = "correct-horse-battery-staple"
BODY = {
    "fqdn": "_acme-challenge.www.example.com.",
    "value": "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
}
ENV = {
    "DJANGO_DNS_BACKEND": "memory",
    "DJANGO_MEMORY_ZONES": "example.com",
    "DJANGO_LOGIN_FAILURES_PER_USERNAME": str(PER_USERNAME),
    "DJANGO_LOGIN_FAILURES_PER_ADDRESS": "0",
    "DJANGO_LOGIN_FAILURE_WINDOW": "600",
}


def failures_in_database(database: str, username: str) -> int:
    key = "user:" + hashlib.sha256(username.encode()).hexdigest()
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT failures FROM api_failedlogincounter WHERE key = %s", (key,)
        ).fetchone()
    return int(row[0]) if row else 0


def present(url: str, auth: tuple[str, str]) -> requests.Response:
    return requests.post(url + "/present", json=BODY, auth=auth, timeout=60)


def test_failures_on_two_servers_are_counted_together_and_lock_out_on_both(
    tmp_path: Path,
) -> None:
    with postgresql_database() as database:
        # Two threads per worker: enough for the concurrent guesses, and few database
        # connections (each thread keeps one) on a PostgreSQL that parallel suites share.
        units = [
            ProviderServer(tmp_path / f"unit{i}", ENV, database_url=database) for i in range(2)
        ]
        with running(units[0]), running(units[1]):

            def logs() -> str:
                return "\n".join(unit.log() for unit in units)

            units[0].create_user("person", HUMAN_PASSWORD)
            machine = ("machine", units[0].create_user("machine", domains="www.example.com"))
            wrong = ("person", "wrong-password")

            barrier = threading.Barrier(CONCURRENT)

            def guess(i: int) -> int:
                barrier.wait()
                return present(units[i % 2].url, wrong).status_code

            with ThreadPoolExecutor(CONCURRENT) as pool:
                statuses = list(pool.map(guess, range(CONCURRENT)))
            assert statuses == [401] * CONCURRENT, logs()
            assert failures_in_database(database, "person") == CONCURRENT

            for i in range(PER_USERNAME - CONCURRENT):
                assert present(units[i % 2].url, wrong).status_code == 401, logs()
            for unit in units:
                refused = present(unit.url, wrong)
                assert refused.status_code == 429, logs()
                assert 0 < int(refused.headers["Retry-After"]) <= 600
                assert present(unit.url, ("person", HUMAN_PASSWORD)).status_code == 429
                token = requests.post(
                    unit.url + "/api/v1/auth/token/",
                    json={"username": "person", "password": HUMAN_PASSWORD},
                    timeout=60,
                )
                assert token.status_code == 429
                assert present(unit.url, machine).status_code == 200, logs()
            assert failures_in_database(database, "person") == PER_USERNAME
            assert logs().count("login lockout: 8 failed logins for username 'person'") == 1
