"""Run the real provider under gunicorn in a subprocess, for tests through HTTP.

Each server gets its own PostgreSQL database (created and dropped here) unless it is given the
URL of one to share, and its own environment for the DNS backend.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parents[1] / "httprequest_lego_provider"
ADMIN_URL = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def postgresql_database() -> Iterator[str]:
    """Create an empty database on the test server; yield its URL; drop it afterwards."""
    name = f"hlp_test_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def provider_environment(database_url: str, backend_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a provider process: production settings from variables only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POSTGRESQL_"))}
    env.update(
        DJANGO_SECRET_KEY="test-" + secrets.token_urlsafe(32),
        DJANGO_ALLOWED_HOSTS='["127.0.0.1"]',
        POSTGRESQL_DB_CONNECT_STRING=database_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(backend_env)
    return env


def manage(env: Mapping[str, str], *args: str) -> str:
    """Run a management command in the provider's project folder; return its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def create_machine_user(env: Mapping[str, str], username: str, *grants: str) -> str:
    """Create a user with a generated password and grants; return the password.

    ``grants`` are extra arguments for ``allow_domains`` (``--domains``, ``a,b`` ...).
    """
    out = manage(env, "create_user", username)
    password = next(line for line in out.splitlines() if line.startswith("password: "))
    if grants:
        manage(env, "allow_domains", username, *grants)
    return password.removeprefix("password: ")


@contextmanager
def gunicorn_server(
    env: Mapping[str, str], *, workers: int = 2, threads: int = 8, log: Path | None = None
) -> Iterator[str]:
    """Start gunicorn on a free loopback port; yield its base URL; stop it afterwards."""
    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "httprequest_lego_provider.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--timeout", "60",
        ],
        cwd=PROJECT_DIR,
        env=dict(env),
        stdout=out,
        stderr=out,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before serving")
        try:
            urllib.request.urlopen(url + "/present", timeout=2)  # noqa: S310 - loopback URL
        except urllib.error.HTTPError:
            return  # 401/405: the application answers
        except OSError:
            time.sleep(0.2)
        else:
            return
    raise RuntimeError("gunicorn did not answer within 60 s")
