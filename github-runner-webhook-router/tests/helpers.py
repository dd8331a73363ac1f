"""Test helpers: broker URLs on 127.0.0.1, recorded payloads, a hung-broker listener."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
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

AppFactory = Callable[..., Flask]
Poster = Callable[..., TestResponse]
Reader = Callable[..., list[dict[str, Any]]]


def fixture_bytes(name: str) -> bytes:
    """A recorded GitHub payload, byte for byte."""
    return (FIXTURES / name).read_bytes()


def job_body(labels: list[str], action: str = "queued", url: str | None = None) -> bytes:
    """A queued payload in the recorded shape with chosen labels and action."""
    document = json.loads(fixture_bytes("workflow_job.queued.json"))
    document["action"] = action
    document["workflow_job"]["labels"] = labels
    if url is not None:
        document["workflow_job"]["url"] = url
    return json.dumps(document).encode()


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
