"""The provider's real management commands, run from its source against the real PostgreSQL.

The action tests answer the charm's ``container.exec`` with what the real command printed: the
environment is the one the charm gave the service, except the database (a database of the test's
own on the local PostgreSQL, migrated by the service's own ``migrate``) and the DNS backend (the
service's in-memory backend: no DNS server is needed to create an account or rotate a password).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.states import PROVIDER

URL_FILE = PROVIDER.rock_root.parent / ".local" / "test" / "postgresql-url"
MEMORY_ZONES = "example.com"


def postgresql_url() -> str:
    """The tests' PostgreSQL (``TEST_POSTGRESQL_URL``, else what scripts/services wrote).

    Raises:
        RuntimeError: neither is there (a missing service fails loudly, never skips).
    """
    url = os.environ.get("TEST_POSTGRESQL_URL") or (
        URL_FILE.read_text().strip() if URL_FILE.is_file() else ""
    )
    if not url:
        raise RuntimeError(f"no PostgreSQL: export TEST_POSTGRESQL_URL or write {URL_FILE}")
    return url


@dataclass(frozen=True)
class RealService:
    """The service's source with a migrated database of its own."""

    database_url: str

    def run(
        self, environment: Mapping[str, str], *arguments: str
    ) -> subprocess.CompletedProcess[str]:
        """``manage.py <arguments>`` as the charm runs it, with the charm's environment."""
        env = {k: v for k, v in environment.items() if not k.startswith("POSTGRESQL_")}
        env |= {
            "POSTGRESQL_DB_CONNECT_STRING": self.database_url,
            "DJANGO_DNS_BACKEND": "memory",
            "DJANGO_MEMORY_ZONES": MEMORY_ZONES,
            "PATH": "/usr/bin:/bin",
        }
        return subprocess.run(
            [sys.executable, "manage.py", *arguments],
            cwd=PROVIDER.workload_source,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, environment: Mapping[str, str], *arguments: str) -> str:
        """Run a command that must succeed; its standard output."""
        result = self.run(environment, *arguments)
        assert result.returncode == 0, result.stderr
        return result.stdout


@contextmanager
def real_service(environment: Mapping[str, str]) -> Iterator[RealService]:
    """A fresh database, migrated with the charm's environment; dropped afterwards."""
    admin = postgresql_url()
    name = f"charm_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(admin)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    service = RealService(urlunsplit(parts._replace(path=f"/{name}")))
    try:
        service.ok(environment, "migrate", "--noinput")
        yield service
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
