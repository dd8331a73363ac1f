"""Slow and idle anonymous clients do not starve the router as the rock runs it.

Real gunicorn with the server model of ``webserver.json`` (the one the charm and the benchmarks
use), real Redis and RabbitMQ on 127.0.0.1 and the embedded (filesystem) broker, metrics in
multiprocess mode. While 50 anonymous connections are held open (headers or body trickled a
byte at a time, or idle after connecting; reopened whenever the server closes one), signed
deliveries are posted: each must be answered 200 within the client's timeout of a few seconds
and be on the queue exactly once. With gunicorn's gthread worker (2 x 4 threads) each trickling
connection holds a thread, and these deliveries time out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from helpers import AMQP_URL, REDIS_URL, SECRET, free_port, job_body
from slow_clients import Mode, SlowClients
from webhook_router import create_app
from webhook_router.broker import connection
from webhook_router.settings import Settings
from webhook_router.signature import sign
from webserver_args import gunicorn_args

ROCK_ROOT = Path(__file__).resolve().parents[1]


SLOW_CLIENTS = 50
DELIVERIES = 6
# Long enough for any answer on a busy 2-core machine, short enough that a starved server
# fails the test instead of answering once the slow clients give up.
CLIENT_TIMEOUT_SECONDS = 5
BROKERS = {"redis": REDIS_URL, "rabbitmq": AMQP_URL, "embedded": None}
# What GitHub sends before the body: with a signature to check, the router must read the body.
SLOW_HEADERS = {
    "X-GitHub-Event": "workflow_job",
    "X-GitHub-Delivery": "slow",
    "X-Hub-Signature-256": "sha256=" + "0" * 64,
}


@dataclass
class Router:
    """A running gunicorn serving the router, and what it was started with."""

    port: int
    flavour: str
    env: dict[str, str]
    log: Path

    def deliver(self, body: bytes, delivery: str) -> int | str:
        """Post a signed delivery on a new connection: its status, or the client's error."""
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
            "Connection": "close",
        }
        try:
            return requests.post(
                f"http://127.0.0.1:{self.port}/webhook",
                data=body,
                headers=headers,
                timeout=CLIENT_TIMEOUT_SECONDS,
            ).status_code
        except requests.RequestException as exc:
            return type(exc).__name__  # a timeout: the server was starved

    def drain(self) -> list[str]:
        """Take every message off the flavour's queue; return the job urls."""
        app: Flask = create_app(Settings.from_env({**self.env, "FLASK_METRICS_PORT": "0"}))
        settings = app.extensions["webhook_router"].settings
        urls: list[str] = []
        with connection(settings.broker_url, settings.state_dir, 5.0) as conn:
            queue = conn.SimpleQueue(self.flavour)
            try:
                while True:
                    try:
                        message = queue.get(timeout=0.3)
                    except queue.Empty:
                        return urls
                    urls.append(json.loads(message.payload)["url"])
                    message.ack()
            finally:
                queue.close()

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


# The rock's server model; TEST_WEBSERVER_JSON points at another one to compare (a gthread
# model fails these tests).
WEBSERVER_JSON = Path(os.environ.get("TEST_WEBSERVER_JSON", ROCK_ROOT / "webserver.json"))


@contextmanager
def serving(
    base: Path, broker_url: str | None, webserver: Path = WEBSERVER_JSON
) -> Iterator[Router]:
    """Run gunicorn with the server model in ``webserver`` until the block ends.

    Args:
        base: folder for the router's state and gunicorn's log.
        broker_url: ``MONGODB_DB_CONNECT_STRING`` (a kombu URL); None for the embedded broker.
        webserver: the ``webserver.json`` to take gunicorn's flags from (the rock's).
    """
    port, metrics_port = free_port(), free_port()
    flavour = f"slow-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "MONGO"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env |= {
        "FLASK_FLAVOURS": f"- {flavour}: [x64]",
        "FLASK_WEBHOOK_SECRET": SECRET,
        "FLASK_STATE_DIR": str(base / "state"),
        "FLASK_METRICS_PORT": str(metrics_port),
        "FLASK_METRICS_ADDRESS": "127.0.0.1",
    }
    if broker_url is not None:
        env["MONGODB_DB_CONNECT_STRING"] = broker_url
    log = base / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "app:app", "--bind", f"127.0.0.1:{port}",
                *gunicorn_args(webserver),
            ],
            cwd=ROCK_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    router = Router(port, flavour, env, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                metrics = f"http://127.0.0.1:{metrics_port}/metrics"
                if requests.get(metrics, timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, f"gunicorn exited:\n{router.log_tail()}"
            assert time.monotonic() < deadline, f"gunicorn did not come up:\n{router.log_tail()}"
            time.sleep(0.1)
        router.drain()
        yield router
    finally:
        process.terminate()
        process.wait(timeout=30)
        router.drain()


@pytest.fixture(scope="module", params=list(BROKERS))
def router(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    broker: str = request.param
    with serving(tmp_path_factory.mktemp(f"slow-{broker}"), BROKERS[broker]) as router:
        yield router


@pytest.mark.parametrize("mode", ["headers", "body", "idle"])
def test_deliveries_are_queued_while_50_anonymous_slow_clients_hold_connections(
    router: Router, mode: Mode
) -> None:
    urls = [
        f"https://api.github.com/repos/o/r/actions/jobs/{uuid.uuid4()}" for _ in range(DELIVERIES)
    ]
    slow = SlowClients(
        "127.0.0.1", router.port, SLOW_CLIENTS, mode, path="/webhook", headers=SLOW_HEADERS
    )
    with slow:
        time.sleep(1)  # let the workers take the slow connections and start reading them
        statuses = [router.deliver(job_body(["x64"], url=url), str(uuid.uuid4())) for url in urls]
        held = slow.held()

    assert statuses == [200] * DELIVERIES, router.log_tail()
    assert held == SLOW_CLIENTS  # the slow clients were still attached after the deliveries
    assert sorted(router.drain()) == sorted(urls)
