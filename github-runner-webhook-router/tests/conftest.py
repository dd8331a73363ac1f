"""Shared fixtures: apps built from environment dicts, signed posts, queue readers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from helpers import (
    JSON,
    RECORDED_JOB_FILES,
    REDIS_URL,
    SECRET,
    AppFactory,
    Blackhole,
    Poster,
    Reader,
    dispatcher,
    fixture_bytes,
)
from webhook_router import create_app
from webhook_router.broker import connection as broker_connection
from webhook_router.broker import flavour_queue
from webhook_router.dedup import REDIS_DEDUP_PREFIX
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
        values = {
            "FLASK_STATE_DIR": str(tmp_path / "state"),
            "FLASK_METRICS_PORT": "0",
            "FLASK_WEBHOOK_SECRET": SECRET,
        }
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
def forget_recorded_jobs() -> Iterator[None]:
    """Forget the recorded payloads' jobs in the shared Redis dedup store, before and after.

    Tests that send a recorded payload byte for byte send the same job id every time; the
    store remembers published jobs for days. (Other tests use fresh job ids: `job_body`.)
    """

    def forget() -> None:
        with redis.Redis.from_url(REDIS_URL) as admin:
            for name in RECORDED_JOB_FILES:
                job = json.loads(fixture_bytes(name))["workflow_job"]
                keys = list(admin.scan_iter(match=f"{REDIS_DEDUP_PREFIX}*{job['id']}:*"))
                if keys:
                    admin.delete(*keys)

    forget()
    yield
    forget()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    """A broker address that accepts TCP and never replies."""
    hole = Blackhole()
    yield hole
    hole.close()
