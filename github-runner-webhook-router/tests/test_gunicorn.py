"""Real gunicorn with several worker processes: shared dedup, summed metrics, body limits.

The server runs the service's own server model (webserver.json: worker class, workers,
threads), as the rock, the charm and scripts/run do.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from helpers import REDIS_URL, SECRET, free_port, job_body
from webhook_router import create_app
from webhook_router.broker import connection
from webhook_router.settings import Settings
from webhook_router.signature import sign
from webserver_args import gunicorn_args, load

ROOT = Path(__file__).parent.parent

SERVER_MODEL = ROOT / "webserver.json"
# The tests show behaviour across worker processes: at least two, whatever the model says.
WORKERS: int = max(2, load(SERVER_MODEL).workers)


@dataclass
class Server:
    """A running gunicorn and what it was started with."""

    url: str
    metrics_url: str
    flavour: str
    env: dict[str, str]
    access_log: Path

    def post(self, body: bytes, delivery: str, session: requests.Session | None = None) -> int:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
            "Connection": "close",  # a new connection each time, so workers take turns
        }
        sender = session or requests
        return sender.post(
            f"{self.url}/webhook", data=body, headers=headers, timeout=10
        ).status_code

    def log_length(self) -> int:
        """Lines in the access log so far (to look only at what comes after)."""
        return len(self.access_log.read_text().splitlines())

    def pids_with_status(self, status: int, after: int = 0) -> set[str]:
        """Worker pids that answered ``status``, in the access log's lines from ``after`` on."""
        lines = self.access_log.read_text().splitlines()[after:]
        return {line.split()[0] for line in lines if line.endswith(f" {status}")}

    def drain(self) -> list[str]:
        """Read every message on the flavour's queue with SimpleQueue; return the urls."""
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


def start(tmp_path: Path, broker: str | None) -> Iterator[Server]:
    port, metrics_port = free_port(), free_port()
    flavour = f"gunicorn-{uuid.uuid4().hex[:10]}"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "MONGO"))
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        {
            "FLASK_FLAVOURS": f"- {flavour}: [x64]",
            "FLASK_WEBHOOK_SECRET": SECRET,
            "FLASK_STATE_DIR": str(tmp_path / "state"),
            "FLASK_METRICS_PORT": str(metrics_port),
            "FLASK_METRICS_ADDRESS": "127.0.0.1",
            "FLASK_MAX_BODY_BYTES": "65536",
        }
    )
    if broker is not None:
        env["MONGODB_DB_CONNECT_STRING"] = broker
    access_log = tmp_path / "access.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            *gunicorn_args(SERVER_MODEL),
            "--workers",
            str(WORKERS),
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            "%(p)s %(s)s",
            "app:app",
        ],
        cwd=ROOT,
        env=env,
    )
    server = Server(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{metrics_port}/metrics",
        flavour,
        env,
        access_log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(server.metrics_url, timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        server.drain()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("gunicorn-redis"), REDIS_URL)


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("gunicorn-embedded"), None)


@pytest.mark.parametrize("which", ["redis_server", "embedded_server"])
def test_redelivery_served_by_another_worker_is_not_published_twice(
    request: pytest.FixtureRequest, which: str
) -> None:
    server: Server = request.getfixturevalue(which)
    delivery = str(uuid.uuid4())
    body = job_body(["x64"], url=f"https://api.github.com/repos/o/r/actions/jobs/{delivery}")
    server.drain()

    start = server.log_length()
    statuses: list[int] = []
    # Which worker accepts a connection is the kernel's choice: repeat the delivery until every
    # worker has answered a copy (bounded), so the duplicate check is shown across processes.
    deadline = time.monotonic() + 30
    while len(statuses) < 10 or len(server.pids_with_status(200, after=start)) < WORKERS:
        assert time.monotonic() < deadline, "one worker answered every copy"
        statuses.append(server.post(body, delivery))

    assert set(statuses) == {200}
    assert server.drain() == [f"https://api.github.com/repos/o/r/actions/jobs/{delivery}"]


@pytest.mark.parametrize("which", ["redis_server", "embedded_server"])
def test_captured_body_replayed_with_new_delivery_ids_across_workers_is_queued_once(
    request: pytest.FixtureRequest, which: str
) -> None:
    """The delivery id is not signed: replays with fresh ids hit both workers, one job queued."""
    server: Server = request.getfixturevalue(which)
    body = job_body(["x64"], url="https://api.github.com/repos/o/r/actions/jobs/42")
    server.drain()

    start = server.log_length()
    statuses: list[int] = []
    deadline = time.monotonic() + 30
    while len(statuses) < 10 or len(server.pids_with_status(200, after=start)) < WORKERS:
        assert time.monotonic() < deadline, "one worker answered every copy"
        statuses.append(server.post(body, str(uuid.uuid4())))

    assert set(statuses) == {200}
    assert server.drain() == ["https://api.github.com/repos/o/r/actions/jobs/42"]


@pytest.mark.parametrize("which", ["redis_server", "embedded_server"])
@pytest.mark.parametrize("fresh_ids", [False, True], ids=["same-delivery", "new-deliveries"])
def test_concurrent_copies_of_a_job_all_get_200_and_publish_exactly_once(
    request: pytest.FixtureRequest, which: str, fresh_ids: bool
) -> None:
    """Copies racing the first one wait for its outcome instead of answering 409."""
    server: Server = request.getfixturevalue(which)
    delivery = str(uuid.uuid4())
    body = job_body(["x64"], url=f"https://api.github.com/repos/o/r/actions/jobs/{delivery}")
    server.drain()

    def send(_: int) -> int:
        return server.post(body, str(uuid.uuid4()) if fresh_ids else delivery)

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, range(32)))

    assert statuses == [200] * 32
    assert len(server.drain()) == 1


def test_metrics_port_serves_the_sum_over_all_workers(redis_server: Server) -> None:
    def published() -> float:
        text = requests.get(redis_server.metrics_url, timeout=5).text
        prefix = f'webhook_router_webhooks_total{{flavour="{redis_server.flavour}",'
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(prefix) and 'outcome="published"' in line
        )

    before = published()
    start = redis_server.log_length()
    posted = 0
    # Which worker accepts a connection is the kernel's choice: post until both have answered
    # (the access log flushes per line, so allow it a moment), bounded.
    deadline = time.monotonic() + 30
    while posted < 20 or len(redis_server.pids_with_status(200, after=start)) < WORKERS:
        assert time.monotonic() < deadline, "one worker answered every request"
        assert redis_server.post(job_body(["x64"]), str(uuid.uuid4())) == 200
        posted += 1

    assert published() - before == posted
    text = requests.get(redis_server.metrics_url, timeout=5).text
    assert "webhook_router_publish_seconds_bucket" in text
    redis_server.drain()


def test_chunked_body_is_refused_with_411_before_it_is_read(redis_server: Server) -> None:
    """Without Content-Length the size limit cannot be checked up front; GitHub sends it."""
    host, port = redis_server.url.removeprefix("http://").split(":")
    client = http.client.HTTPConnection(host, int(port), timeout=10)
    body = job_body(["x64"]) + b" " * 100_000
    try:
        client.request(
            "POST",
            "/webhook",
            body=iter([body[i : i + 8192] for i in range(0, len(body), 8192)]),
            headers={"Content-Type": "application/json", "X-GitHub-Event": "workflow_job"},
            encode_chunked=True,
        )
        response = client.getresponse()
        status = response.status
    finally:
        client.close()

    assert status == 411
