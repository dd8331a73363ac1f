"""The provider service as deployed: management commands, then gunicorn on a loopback port."""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tests.dnsinfra import LOOPBACK, InfraError, free_port

PROJECT_DIR = Path(__file__).resolve().parents[2] / "httprequest_lego_provider"


class ProviderService:
    """The real Django service in its own processes, configured only by environment variables.

    SQLite in a private data directory keeps the e2e tests free of a database server.
    """

    def __init__(self, directory: Path, backend_env: Mapping[str, str]) -> None:
        self.directory = directory
        self.port = free_port()
        self.log_file = directory / "gunicorn.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(directory),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": f'["{LOOPBACK}"]',
            "DJANGO_DATA_DIR": str(directory / "data"),
            "DJANGO_LOG_LEVEL": "INFO",
            **backend_env,
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``HTTPREQ_ENDPOINT`` for lego."""
        return f"http://{LOOPBACK}:{self.port}"

    def manage(self, *args: str) -> str:
        """Run ``manage.py`` with the service's environment; fail with its output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def add_user(self, username: str, *, domains: str = "", subdomains: str = "") -> str:
        """Create a user with the given grants and return the password to send."""
        password = secrets.token_hex(24)  # never starts with "-", which argparse takes for a flag
        self.manage("create_user", username, password)
        if domains or subdomains:
            grants = []
            if domains:
                grants += ["--domains", domains]
            if subdomains:
                grants += ["--subdomains", subdomains]
            self.manage("allow_domains", username, *grants)
        return password

    def start(self, timeout: float = 30.0) -> None:
        """Migrate, then serve with two gunicorn workers; wait until HTTP answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput")
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "httprequest_lego_provider.wsgi:application",
                    "--bind",
                    f"{LOOPBACK}:{self.port}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    "-",
                ],
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                raise InfraError(f"gunicorn exited with {self._process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise InfraError(f"the provider did not answer in {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        """Any HTTP answer to an anonymous GET /present (401, 403 or 405) means it is serving."""
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
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log(self) -> str:
        """Return the tail of gunicorn's log (the service logs to stderr)."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-60:])
        except FileNotFoundError:
            return "(no log)"
