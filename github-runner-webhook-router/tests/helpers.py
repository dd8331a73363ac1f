"""Test helpers: broker URLs on 127.0.0.1, recorded payloads, a hung-broker listener."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from webhook_router.dispatch import Dispatcher
from webhook_router.views import EXTENSION
from werkzeug.test import TestResponse

FIXTURES = Path(__file__).parent / "fixtures"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
SECRET = "It's a Secret to Everybody"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
RECORDED_JOB_FILES = (
    "workflow_job.queued.json",
    "workflow_job.waiting.json",
    "workflow_job.in_progress.json",
    "workflow_job.completed.json",
)

AppFactory = Callable[..., Flask]
Poster = Callable[..., TestResponse]
Reader = Callable[..., list[dict[str, Any]]]


def fixture_bytes(name: str) -> bytes:
    """A recorded GitHub payload, byte for byte."""
    return (FIXTURES / name).read_bytes()


# Job ids unique to this test process (a random start, so runs never share a dedup key).
_job_ids = itertools.count(random.randrange(10**12, 10**15, 10**6))  # noqa: S311 - not secret


def new_job_id() -> int:
    """A job id no other job of any test run has."""
    return next(_job_ids)


def job_body(
    labels: list[str],
    action: str = "queued",
    url: str | None = None,
    *,
    job_id: int | None = None,
    run_attempt: int = 1,
    fixture: str = "workflow_job.queued.json",
    extra: Mapping[str, object] | None = None,
    **job_fields: object,
) -> bytes:
    """A recorded payload with chosen labels and action, for a new job unless `job_id` is given.

    `extra` and keyword arguments set more `workflow_job` fields.

    Every call without `job_id` is another job (the router deduplicates on the job's id and
    run attempt): build the body once to send the same job twice.
    """
    document = json.loads(fixture_bytes(fixture))
    document["action"] = action
    job = document["workflow_job"]
    job["labels"] = labels
    set_job_id(job, new_job_id() if job_id is None else job_id)
    job["run_attempt"] = run_attempt
    if url is not None:
        job["url"] = url
    job.update(extra or {})
    job.update(job_fields)
    return json.dumps(document).encode()


def set_job_id(job: dict[str, object], job_id: int) -> None:
    """Give a recorded job another id, in its URL too, as GitHub's payloads always agree."""
    job["id"] = job_id
    url = job.get("url")
    if isinstance(url, str):
        job["url"] = re.sub(r"/actions/jobs/\d+$", f"/actions/jobs/{job_id}", url)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def dispatcher(app: Flask) -> Dispatcher:
    """The app's dispatcher."""
    found: Dispatcher = app.extensions[EXTENSION]
    return found


class Blackhole:
    """A TCP listener that accepts connections and never answers: a hung broker."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port: int = self._server.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._clients.append(client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for client in self._clients:
            client.close()
        self._server.close()


class SlowProxy:
    """A TCP proxy to a real broker that holds every reply `delay` seconds: a slow broker.

    Each reply stays within a per-wait timeout longer than `delay`, but an exchange of several
    round trips (connect, handshake, declare, publish, confirm) adds up beyond it.
    """

    def __init__(self, upstream_port: int, delay: float) -> None:
        self._upstream_port = upstream_port
        self.delay = delay  # may be changed while connections are open
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port: int = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            self._sockets += [client, upstream]
            for source, target, replies in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(
                    target=self._pipe, args=(source, target, replies), daemon=True
                ).start()

    def _pipe(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if replies and self.delay and self._stop.wait(self.delay):
                    return
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
