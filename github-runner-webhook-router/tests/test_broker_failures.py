"""Broker outages: 503 within the configured bound, recovery without restart, /health."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pytest
import redis
from flask import Flask
from helpers import (
    REDIS_URL,
    AppFactory,
    Blackhole,
    Poster,
    Reader,
    SlowProxy,
    dispatcher,
    free_port,
    job_body,
)
from kombu.connection import Connection
from kombu.messaging import Producer
from pymongo import MongoClient, uri_parser
from webhook_router.broker import connection, mongodb_url_with_timeouts
from webhook_router.errors import BrokerUnavailableError

# The configured budget and the margin allowed on top of it. The margin covers the dedup
# store's own bound and scheduling noise: this asserts the timeout is honoured, not speed.
BUDGET_SECONDS = 2.0
MARGIN_SECONDS = 2.0


def broker_url(scheme: str, port: int) -> str:
    """The URL of a broker of this kind on 127.0.0.1 at `port`."""
    return {
        "redis": f"redis://127.0.0.1:{port}/0",
        "amqp": f"amqp://guest:guest@127.0.0.1:{port}//",
        "mongodb": f"mongodb://127.0.0.1:{port}/jobs",
    }[scheme]


@pytest.fixture
def app_on(make_app: AppFactory, flavour: str) -> AppFactory:
    """Build apps that route x64 jobs to `flavour` on the broker at the URL given first."""

    def build(url: str, **env: str) -> Flask:
        return make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", MONGODB_DB_CONNECT_STRING=url, **env)

    return build


def timed_post(post: Poster, app: Flask) -> tuple[int, float]:
    """Post an x64 job; return the status and the seconds the answer took."""
    started = time.monotonic()
    response = post(app.test_client(), job_body(["x64"]))
    return response.status_code, time.monotonic() - started


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_webhook_gets_503_at_once_when_nothing_listens_on_the_broker_port(
    app_on: AppFactory, post: Poster, scheme: str
) -> None:
    app = app_on(
        broker_url(scheme, free_port()), FLASK_PUBLISH_TIMEOUT_SECONDS=str(BUDGET_SECONDS)
    )

    status, elapsed = timed_post(post, app)

    assert status == 503
    assert elapsed < BUDGET_SECONDS + MARGIN_SECONDS
    assert app.test_client().get("/health").status_code == 503


@pytest.mark.parametrize("scheme", ["redis", "amqp", "mongodb"])
def test_webhook_gets_503_within_the_budget_when_the_broker_never_answers(
    app_on: AppFactory, post: Poster, blackhole: Blackhole, scheme: str
) -> None:
    app = app_on(
        broker_url(scheme, blackhole.port), FLASK_PUBLISH_TIMEOUT_SECONDS=str(BUDGET_SECONDS)
    )

    status, elapsed = timed_post(post, app)
    started = time.monotonic()
    health = app.test_client().get("/health").status_code

    assert status == 503
    assert elapsed < BUDGET_SECONDS + MARGIN_SECONDS
    assert health == 503
    assert time.monotonic() - started < BUDGET_SECONDS + MARGIN_SECONDS


def test_default_budget_answers_well_within_githubs_ten_seconds(
    app_on: AppFactory, post: Poster, blackhole: Blackhole
) -> None:
    app = app_on(broker_url("amqp", blackhole.port))

    status, elapsed = timed_post(post, app)

    assert status == 503
    assert elapsed < 5.0


class RedisServer:
    """A private redis-server on a free port that a test may stop and start."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is installed by scripts/bootstrap"
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with Connection(self.url, connect_timeout=0.2) as probe:
                    probe.ensure_connection(max_retries=0)
                    return
            except Exception:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_publishing_resumes_without_restart_when_the_broker_comes_back(
    redis_server: RedisServer, app_on: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = app_on(redis_server.url, FLASK_PUBLISH_TIMEOUT_SECONDS=str(BUDGET_SECONDS))
    client = app.test_client()
    first = job_body(["x64"], url="https://api.github.com/repos/o/r/actions/jobs/1")
    lost = job_body(["x64"], url="https://api.github.com/repos/o/r/actions/jobs/2")
    after = job_body(["x64"], url="https://api.github.com/repos/o/r/actions/jobs/3")
    assert post(client, first).status_code == 200
    assert len(read_queue(app, flavour)) == 1  # this Redis keeps nothing over a restart

    redis_server.stop()
    assert post(client, lost).status_code == 503
    assert client.get("/health").status_code == 503
    redis_server.start()

    assert client.get("/health").status_code == 200
    assert post(client, after).status_code == 200
    urls = [message["url"] for message in read_queue(app, flavour)]
    assert urls == ["https://api.github.com/repos/o/r/actions/jobs/3"]


def test_failed_publish_can_be_redelivered_with_the_same_delivery_id(
    redis_server: RedisServer, app_on: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """The dedup reservation of a failed publish is released, so GitHub's redelivery counts."""
    app = app_on(
        redis_server.url,
        FLASK_DEDUP_URL=REDIS_URL,
        FLASK_PUBLISH_TIMEOUT_SECONDS=str(BUDGET_SECONDS),
    )
    client = app.test_client()
    delivery = f"failed-then-redelivered-{flavour}"
    body = job_body(["x64"])

    redis_server.stop()
    assert post(client, body, delivery=delivery).status_code == 503
    redis_server.start()
    assert post(client, body, delivery=delivery).status_code == 200
    assert post(client, body, delivery=delivery).status_code == 200

    assert len(read_queue(app, flavour)) == 1


def test_one_connection_serves_many_webhooks(
    redis_server: RedisServer, app_on: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """The reference opened a connection per webhook: count clients on a private Redis."""
    app = app_on(redis_server.url, FLASK_DEDUP_WINDOW_SECONDS="0")
    client = app.test_client()
    with redis.Redis.from_url(redis_server.url) as admin:
        assert post(client, job_body(["x64"])).status_code == 200
        before = admin.info("stats")["total_connections_received"]
        for _ in range(29):
            assert post(client, job_body(["x64"])).status_code == 200
        after = admin.info("stats")["total_connections_received"]

    assert after == before
    assert len(read_queue(app, flavour)) == 30


def test_multi_host_mongodb_uri_is_accepted_and_parsed_by_kombu(tmp_path: Path) -> None:
    """What a multi-unit MongoDB hands out; no MongoDB runs here, so nothing connects."""
    url = "mongodb://u:p@127.0.0.1:27017,127.0.0.2:27017/db?replicaSet=rs0&authSource=admin"

    conn = connection(url, tmp_path, 1.5)
    # kombu keeps the whole URI for pymongo, which parses it as below when connecting.
    uri = str(conn.hostname)
    parsed = uri_parser.parse_uri(uri)
    client: MongoClient[dict[str, object]] = MongoClient(uri, connect=False)
    client.close()
    conn.release()

    assert conn.transport_cls == "mongodb"
    assert parsed["nodelist"] == [("127.0.0.1", 27017), ("127.0.0.2", 27017)]
    assert parsed["database"] == "db"
    assert parsed["options"]["replicaSet"] == "rs0"
    assert parsed["options"]["serverSelectionTimeoutMS"] == 1.5  # pymongo keeps seconds
    assert ":p@" not in conn.as_uri()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mongodb://u:p@127.0.0.1:27017,127.0.0.2:27017/db?replicaSet=rs0",
            "mongodb://u:p@127.0.0.1:27017,127.0.0.2:27017/db?replicaSet=rs0"
            "&serverSelectionTimeoutMS=1500&socketTimeoutMS=1500&connectTimeoutMS=1500",
        ),
        (
            "mongodb://127.0.0.1:27017",
            "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=1500"
            "&socketTimeoutMS=1500&connectTimeoutMS=1500",
        ),
        (
            "mongodb://127.0.0.1/db?serverselectiontimeoutms=100",
            "mongodb://127.0.0.1/db?serverselectiontimeoutms=100"
            "&socketTimeoutMS=1500&connectTimeoutMS=1500",
        ),
    ],
)
def test_mongodb_urls_get_bounded_timeouts_unless_they_set_their_own(
    url: str, expected: str
) -> None:
    assert mongodb_url_with_timeouts(url, 1.5) == expected


def test_health_of_unreachable_broker_is_counted_as_a_broker_error(app_on: AppFactory) -> None:
    app = app_on(broker_url("redis", free_port()))

    assert app.test_client().get("/health").text == "Message broker unavailable\n"
    registry = dispatcher(app).metrics.registry
    assert (
        registry.get_sample_value("webhook_router_broker_errors_total", {"operation": "health"})
        == 1
    )


@pytest.mark.parametrize(("scheme", "port"), [("redis", 6379), ("amqp", 5672)])
def test_budget_bounds_each_attempt_as_a_whole_on_a_slow_broker(
    make_app: AppFactory, post: Poster, flavour: str, scheme: str, port: int
) -> None:
    """Each reply comes within the per-wait timeout, but an attempt needs several replies.

    Real Redis / RabbitMQ behind a proxy that holds each reply 0.7 s; the budget is 2 s, so
    1 s per attempt. Bounding only each network wait, the publish would end (200) after
    several seconds; bounding the attempt, the answer is a 503 within the budget.
    """
    proxy = SlowProxy(port, delay=0.7)
    app = make_app(
        FLASK_FLAVOURS=f"- {flavour}: [x64]",
        MONGODB_DB_CONNECT_STRING=broker_url(scheme, proxy.port),
        FLASK_DEDUP_WINDOW_SECONDS="0",
        FLASK_PUBLISH_TIMEOUT_SECONDS=str(BUDGET_SECONDS),
    )
    try:
        status, elapsed = timed_post(post, app)
    finally:
        proxy.close()

    assert status == 503
    assert elapsed < BUDGET_SECONDS + 0.5


def test_connection_goes_back_to_the_pool_only_reset_after_an_unexpected_error(
    redis_server: RedisServer, app_on: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """An unexpected error mid-publish leaves the connection in an unknown state: drop it.

    The one seam patched is kombu's Producer.publish, failing once with an error that is no
    broker error; the next webhook must get a fresh connection (counted on a private Redis).
    """
    app = app_on(redis_server.url, FLASK_DEDUP_WINDOW_SECONDS="0")
    client = app.test_client()
    assert post(client, job_body(["x64"])).status_code == 200
    with redis.Redis.from_url(redis_server.url) as admin:
        before = admin.info("stats")["total_connections_received"]
        with mock.patch.object(
            Producer, "publish", autospec=True, side_effect=RuntimeError("half a frame written")
        ):
            assert post(client, job_body(["x64"])).status_code == 500
        assert post(client, job_body(["x64"])).status_code == 200
        after = admin.info("stats")["total_connections_received"]

    assert after > before
    assert len(read_queue(app, flavour)) == 2


def test_concurrent_broker_failures_raise_their_own_exceptions(
    app_on: AppFactory, flavour: str
) -> None:
    """Each failing request gets its own exception (and cause), never one raised elsewhere."""
    app = app_on(broker_url("redis", free_port()), FLASK_PUBLISH_TIMEOUT_SECONDS="1")
    publisher = dispatcher(app).publisher
    start = threading.Barrier(8)

    def fail(_: int) -> BrokerUnavailableError:
        start.wait()
        try:
            publisher.publish(flavour, b'"{}"')
        except BrokerUnavailableError as exc:
            return exc
        raise AssertionError("the publish to a closed port succeeded")

    with ThreadPoolExecutor(8) as pool:
        errors = list(pool.map(fail, range(8)))

    causes = [error.__cause__ for error in errors]
    assert len({id(error) for error in errors}) == 8
    assert all(cause is not None for cause in causes)
    assert len({id(cause) for cause in causes}) == 8
