"""Shared fixtures: apps built from environment dicts, signed posts, queue readers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import JSON, SECRET, AppFactory, Blackhole, Poster, Reader, dispatcher
from webhook_router import create_app
from webhook_router.broker import connection as broker_connection
from webhook_router.broker import flavour_queue
from webhook_router.settings import Settings
from webhook_router.signature import sign
from werkzeug.test import TestResponse


@pytest.fixture
def flavour() -> str:
    """A flavour (queue) name no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Build apps from environment variables; closes their connections afterwards."""
    apps: list[Flask] = []

    def build(**env: str) -> Flask:
        values = {"FLASK_STATE_DIR": str(tmp_path / "state"), "FLASK_METRICS_PORT": "0"}
        values.update(env)
        app = create_app(Settings.from_env(values))
        apps.append(app)
        return app

    yield build
    for app in apps:
        dispatcher(app).close()


@pytest.fixture
def post() -> Poster:
    """Send a webhook the way GitHub does: signed over the exact bytes sent."""

    def send(
        client: FlaskClient,
        body: bytes,
        *,
        event: str | None = "workflow_job",
        secret: str | None = SECRET,
        delivery: str | None = None,
        content_type: str = JSON,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        sent = {"Content-Type": content_type, "User-Agent": "GitHub-Hookshot/test"}
        if event is not None:
            sent["X-GitHub-Event"] = event
        sent["X-GitHub-Delivery"] = delivery or str(uuid.uuid4())
        if secret is not None:
            sent["X-Hub-Signature-256"] = sign(secret.encode(), body)
        sent.update(headers or {})
        return client.post("/webhook", data=body, headers=sent)

    return send


@pytest.fixture
def read_queue() -> Iterator[Reader]:
    """Drain a flavour's queue the way a SPEC 2.2 consumer does: kombu SimpleQueue(flavour).

    The payload a consumer sees is JSON *text*; this returns it parsed. Queues read are deleted
    at the end of the test so the shared brokers do not fill up.
    """
    used: dict[tuple[str | None, Path, str], None] = {}

    def read(app: Flask, flavour: str, wait: float = 0.2) -> list[dict[str, Any]]:
        settings = dispatcher(app).settings
        used[(settings.broker_url, settings.state_dir, flavour)] = None
        messages: list[dict[str, Any]] = []
        with broker_connection(settings.broker_url, settings.state_dir, 5.0) as conn:
            queue = conn.SimpleQueue(flavour)
            try:
                while True:
                    try:
                        message = queue.get(timeout=wait)
                    except queue.Empty:
                        break
                    assert isinstance(message.payload, str), "payload must be JSON text"
                    messages.append(json.loads(message.payload))
                    message.ack()
            finally:
                queue.close()
        return messages

    yield read
    for url, state_dir, flavour in used:
        with broker_connection(url, state_dir, 5.0) as conn:
            bound = flavour_queue(flavour)(conn.default_channel)
            bound.delete()
            if url is not None and url.startswith("amqp"):
                bound.exchange.delete()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    """A broker address that accepts TCP and never replies."""
    hole = Blackhole()
    yield hole
    hole.close()
