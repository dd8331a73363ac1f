"""The provider as deployed, for tests through HTTP: management commands, then gunicorn.

A :class:`ProviderServer` is configured only by environment variables, as in production. It
keeps its data (SQLite database, git work directory) and its log in its own directory; given
the URL of a PostgreSQL database (see :func:`postgresql_database`) it uses that instead of
SQLite, so two servers can share one database as two hosts of a deployment do.
"""

from __future__ import annotations

import http.client
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
from webserver_args import gunicorn_args

from tests.postgresql_url import postgresql_url_for_tests
from tests.processes import LOOPBACK, InfraError, ManagedProcess, free_port, run

PROJECT_DIR = Path(__file__).resolve().parents[1] / "httprequest_lego_provider"
WEBSERVER_JSON = Path(__file__).resolve().parents[1] / "webserver.json"
ADMIN_URL = postgresql_url_for_tests()


@contextmanager
def postgresql_database() -> Iterator[str]:
    """Create an empty database on the test server; yield its URL; drop it afterwards."""
    name = f"hlp_test_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise InfraError(
            f"cannot create a test database (see tests/postgresql_url.py): {exc}"
        ) from exc
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ProviderServer:
    """The real Django service in its own processes (a gunicorn arbiter and its workers).

    Args:
        directory: the server's own folder: ``data`` (``DJANGO_DATA_DIR``) and ``gunicorn.log``.
        backend_env: the DNS backend's variables (``DJANGO_DNS_BACKEND`` ...); they may also
            override the defaults, e.g. ``DJANGO_LOG_LEVEL``.
        database_url: a PostgreSQL URL; without one the server uses SQLite in its data folder.
        webserver: the server model (worker class, workers, ...); by default the one the rock
            and the charm run, ``webserver.json``.
    """

    def __init__(
        self,
        directory: Path,
        backend_env: Mapping[str, str],
        *,
        database_url: str | None = None,
        webserver: Path = WEBSERVER_JSON,
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.webserver = webserver
        # The caller's environment without its provider settings, which come only from here.
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DJANGO_", "POSTGRESQL_"))
        }
        self.env |= {
            "HOME": str(directory),  # no git configuration of the user running the tests
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": f'["{LOOPBACK}"]',
            "DJANGO_DATA_DIR": str(directory / "data"),
            "DJANGO_LOG_LEVEL": "INFO",
            # No metrics port unless a test asks for one (servers of one run would share 9103).
            "DJANGO_METRICS_PORT": "0",
            "DJANGO_METRICS_ADDRESS": LOOPBACK,
        }
        if database_url:
            self.env["POSTGRESQL_DB_CONNECT_STRING"] = database_url
        self.env.update(backend_env)
        self.process = ManagedProcess("gunicorn", directory / "gunicorn.log", log_lines=60)

    @property
    def url(self) -> str:
        """The base URL (lego's ``HTTPREQ_ENDPOINT``)."""
        return f"http://{LOOPBACK}:{self.port}"

    def manage(self, *args: str) -> str:
        """Run ``manage.py`` with the server's environment; return its output.

        Raises:
            InfraError: the command failed; the message holds its output.
        """
        return run(
            [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=self.env, timeout=120
        )

    def create_user(
        self,
        username: str,
        password: str | None = None,
        *,
        domains: str = "",
        subdomains: str = "",
    ) -> str:
        """Create a user (or reset its password) with grants, as an operator would.

        Args:
            username: the user to create.
            password: the password to set; without one the command generates and prints one.
            domains: comma-separated names the user may manage exactly.
            subdomains: comma-separated names strictly below which the user may manage names.

        Returns:
            The password to send with basic auth.
        """
        if password is None:
            out = self.manage("create_user", username)
            line = next(line for line in out.splitlines() if line.startswith("password: "))
            password = line.removeprefix("password: ")
        else:
            self.manage("create_user", username, "--", password)  # it may start with "-"
        grants: list[str] = []
        if domains:
            grants += ["--domains", domains]
        if subdomains:
            grants += ["--subdomains", subdomains]
        if grants:
            self.manage("allow_domains", username, *grants)
        return password

    def start(self, timeout: float = 60.0) -> None:
        """Migrate the database, then serve; return once HTTP answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput")
        self.process.start(
            [
                sys.executable, "-m", "gunicorn", "httprequest_lego_provider.wsgi:application",
                "--bind", f"{LOOPBACK}:{self.port}", *gunicorn_args(self.webserver),
                "--no-control-socket", "--access-logfile", "-",
            ],
            ready=self._answers,
            timeout=timeout,
            cwd=PROJECT_DIR,
            env=self.env,
        )  # fmt: skip

    def _answers(self) -> bool:
        """Any HTTP answer below 500 to an anonymous GET /present (401, 405) means it serves."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2)
        try:
            connection.request("GET", "/present")
            return connection.getresponse().status < 500
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        """Stop gunicorn's arbiter by its PID (it stops its workers) and reap it."""
        self.process.stop(timeout=20)

    def log(self) -> str:
        """Return the tail of gunicorn's log (the service logs to stderr)."""
        return self.process.log()
