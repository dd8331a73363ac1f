"""Turn a service's ``webserver.json`` (its gunicorn server model) into gunicorn's CLI flags.

Each rock root holds one ``webserver.json``: the worker class, worker count, threads, worker
timeout, keep-alive and (for the gevent worker) connections per worker that the charm's
defaults, ``scripts/run``, the tests' launchers and the benchmarks all use, so the server that
is measured is the server that runs. Usage::

    python scripts/webserver_args.py httprequest-lego-provider     # prints the flags
    python scripts/webserver_args.py path/to/webserver.json

A launcher in Python calls :func:`gunicorn_args` with the file's path.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_NAME = "webserver.json"
# paas-charm's webserver-worker-class takes sync and gevent; gthread is what gunicorn picks for
# sync with threads > 1.
WORKER_CLASSES = ("sync", "gthread", "gevent")
REQUIRED = ("worker_class", "workers", "threads", "timeout", "keepalive")
OPTIONAL = ("worker_connections",)


class WebServerConfigError(ValueError):
    """The file is missing, not JSON, or holds an unknown key or a bad value (message says)."""


@dataclass(frozen=True)
class WebServer:
    """One service's gunicorn server model (see the module docstring)."""

    worker_class: str
    workers: int
    threads: int
    timeout: int
    keepalive: int
    worker_connections: int | None = None

    def args(self) -> list[str]:
        """Gunicorn's command-line flags for this model."""
        flags = [
            "--worker-class", self.worker_class,
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--timeout", str(self.timeout),
            "--keep-alive", str(self.keepalive),
        ]  # fmt: skip
        if self.worker_connections is not None:
            flags += ["--worker-connections", str(self.worker_connections)]
        return flags


def load(path: Path | str) -> WebServer:
    """Read and check a ``webserver.json``.

    Raises:
        WebServerConfigError: the file is unreadable or invalid; the message names the key.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WebServerConfigError(f"{path}: cannot read a JSON object: {exc}") from exc
    if not isinstance(data, dict):
        raise WebServerConfigError(f"{path}: expected a JSON object")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise WebServerConfigError(f"{path}: unknown keys {unknown}")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise WebServerConfigError(f"{path}: missing keys {missing}")
    if data["worker_class"] not in WORKER_CLASSES:
        raise WebServerConfigError(f"{path}: worker_class must be one of {list(WORKER_CLASSES)}")
    for key in (*REQUIRED[1:], *OPTIONAL):
        value = data.get(key, 1)
        # bool is an int subclass: refuse true/false explicitly.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WebServerConfigError(f"{path}: {key} must be a positive integer")
    if data["worker_class"] == "gevent" and "worker_connections" not in data:
        raise WebServerConfigError(f"{path}: the gevent worker needs worker_connections")
    return WebServer(**data)


def config_path(service: str) -> Path:
    """The ``webserver.json`` of a service folder name (or the path given itself)."""
    candidate = Path(service)
    if candidate.suffix == ".json":
        return candidate
    folder = candidate if candidate.is_absolute() else ROOT / candidate
    return folder / FILE_NAME


def gunicorn_args(path: Path | str) -> list[str]:
    """Gunicorn's flags for the server model in ``path`` (a ``webserver.json``)."""
    return load(path).args()


def main(argv: list[str]) -> int:
    """Print the flags of the service named in ``argv`` as one shell-quoted line."""
    if len(argv) != 1:
        print("usage: webserver_args.py <service folder | webserver.json>", file=sys.stderr)
        return 2
    try:
        print(shlex.join(gunicorn_args(config_path(argv[0]))))
    except WebServerConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
