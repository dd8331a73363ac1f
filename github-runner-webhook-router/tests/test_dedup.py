"""Duplicate jobs: the store contract (Redis and SQLite) and the webhook behaviour."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from helpers import (
    AMQP_URL,
    REDIS_URL,
    SECRET,
    AppFactory,
    Poster,
    Reader,
    dispatcher,
    free_port,
    job_body,
    new_job_id,
)
from webhook_router.dedup import Claim, DedupStore, RedisDedupStore, SqliteDedupStore
from webhook_router.dispatch import job_key
from webhook_router.payload import parse_job
from webhook_router.signature import sign

StoreFactory = Callable[[int], DedupStore]


@pytest.fixture(params=["redis", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Every store must pass the same contract."""
    stores: list[RedisDedupStore | SqliteDedupStore] = []
    prefix = f"test:{uuid.uuid4().hex}:"

    def build(window: int) -> DedupStore:
        store: RedisDedupStore | SqliteDedupStore
        if request.param == "redis":
            store = RedisDedupStore(REDIS_URL, window, prefix=prefix)
        else:
            store = SqliteDedupStore(tmp_path / "dedup.sqlite3", window)
        stores.append(store)
        return store

    yield build
    for store in stores:
        store.close()
    if request.param == "redis":
        with redis.Redis.from_url(REDIS_URL) as admin:
            keys = list(admin.scan_iter(match=prefix + "*"))
            if keys:
                admin.delete(*keys)


def test_store_claims_a_new_id_once_and_reports_it_in_progress(make_store: StoreFactory) -> None:
    store = make_store(60)

    assert store.claim("a") is Claim.NEW
    assert store.claim("a") is Claim.IN_PROGRESS
    assert store.claim("b") is Claim.NEW


def test_store_reports_confirmed_id_done_to_every_client(make_store: StoreFactory) -> None:
    first, second = make_store(60), make_store(60)

    assert first.claim("a") is Claim.NEW
    first.confirm("a")

    assert second.claim("a") is Claim.DONE
    assert first.claim("a") is Claim.DONE


def test_store_forgets_released_id_so_a_redelivery_is_new(make_store: StoreFactory) -> None:
    store = make_store(60)
    store.claim("a")

    store.release("a")

    assert store.claim("a") is Claim.NEW


def test_store_forgets_confirmed_id_after_the_window(make_store: StoreFactory) -> None:
    store = make_store(1)
    store.claim("a")
    store.confirm("a")
    time.sleep(2.1)  # expiry is the behaviour under test; 1 s is the smallest window

    assert store.claim("a") is Claim.NEW


def _open_and_claim(path: str, start: Any, results: Any) -> None:
    """One worker's first request: open the shared store, then claim a key of its own."""
    start.wait()
    try:
        SqliteDedupStore(Path(path), 60).claim(f"job-{os.getpid()}")
        results.put("ok")
    except Exception as exc:  # reported to the parent, which shows it
        results.put(f"{type(exc).__name__}: {exc} ({exc.__cause__!r})")


def test_sqlite_store_opened_by_many_workers_at_once_never_reports_locked(
    tmp_path: Path,
) -> None:
    """Gunicorn's workers open the new file together on their first requests.

    Switching a new file to WAL takes a lock SQLite does not wait for; without the setup lock
    about one start in seven had a worker fail with "database is locked".
    """
    context = multiprocessing.get_context("fork")
    workers = 8
    failures: list[str] = []
    for attempt in range(40):
        path = str(tmp_path / f"start-{attempt}" / "dedup.sqlite3")
        start = context.Barrier(workers)
        results = context.Queue()
        processes = [
            context.Process(target=_open_and_claim, args=(path, start, results))
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        failures += [outcome for outcome in outcomes if outcome != "ok"]

    assert failures == []


BROKERS = {"embedded": None, "redis": REDIS_URL, "rabbitmq": AMQP_URL}


def app_for(make_app: AppFactory, flavour: str, broker: str | None, **env: str) -> Flask:
    """An app routing x64 to `flavour` on `broker`, with the dedup store that broker implies.

    Redis: the same Redis; RabbitMQ and embedded: the SQLite file in the state directory.
    """
    if broker is not None:
        env["MONGODB_DB_CONNECT_STRING"] = broker
    return make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", **env)


def counted(app: Flask, outcome: str, flavour: str) -> float:
    labels = {"outcome": outcome, "flavour": flavour, "reason": ""}
    value = dispatcher(app).metrics.registry.get_sample_value(
        "webhook_router_webhooks_total", labels
    )
    return value or 0.0


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_duplicate_delivery_is_answered_200_and_published_once(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    app = app_for(make_app, flavour, broker)
    client = app.test_client()
    delivery = str(uuid.uuid4())
    body = job_body(["x64"])

    responses = [post(client, body, delivery=delivery) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert responses[1].text == "Duplicate delivery: job already queued\n"
    assert len(read_queue(app, flavour)) == 1
    assert counted(app, "duplicate", flavour) == 2


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_captured_body_resent_with_a_new_delivery_id_or_none_is_not_queued_again(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    """The signature covers the body, not X-GitHub-Delivery: the job's identity is the key."""
    app = app_for(make_app, flavour, broker)
    client = app.test_client()
    body = job_body(["x64"])
    assert post(client, body).status_code == 200

    replayed = post(client, body, delivery=str(uuid.uuid4()))
    headerless = client.post(
        "/webhook",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
        },
    )

    assert replayed.status_code == 200
    assert replayed.text == "Duplicate delivery: job already queued\n"
    assert headerless.status_code == 200
    assert headerless.text == "Duplicate delivery: job already queued\n"
    assert len(read_queue(app, flavour)) == 1


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_job_going_queued_waiting_queued_is_queued_once(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    """An environment-gated job: GitHub sends queued, waiting, then queued with the same id."""
    app = app_for(make_app, flavour, broker)
    client = app.test_client()
    job_id = new_job_id()

    statuses = [
        post(client, job_body(["x64"], action=action, job_id=job_id, status=action)).status_code
        for action in ("queued", "waiting", "queued")
    ]

    assert statuses == [200, 200, 200]
    assert [message["job_id"] for message in read_queue(app, flavour)] == [job_id]


def test_a_new_run_attempt_of_a_job_is_queued_again(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = app_for(make_app, flavour, REDIS_URL)
    client = app.test_client()
    job_id = new_job_id()

    post(client, job_body(["x64"], job_id=job_id, run_attempt=1))
    post(client, job_body(["x64"], job_id=job_id, run_attempt=2))

    attempts = sorted(message["run_attempt"] for message in read_queue(app, flavour))
    assert attempts == [1, 2]


def test_with_dedup_off_every_copy_is_published(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = app_for(make_app, flavour, None, FLASK_DEDUP_WINDOW_SECONDS="0")
    client = app.test_client()
    body = job_body(["x64"])

    post(client, body, delivery="same")
    post(client, body, delivery="same")

    assert len(read_queue(app, flavour)) == 2


def test_duplicates_are_suppressed_with_the_embedded_sqlite_store_across_processes(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]")
    second = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]")  # another worker, same state dir
    body = job_body(["x64"])

    assert post(app.test_client(), body).status_code == 200
    assert post(second.test_client(), body).status_code == 200

    assert len(read_queue(app, flavour)) == 1


def test_job_is_published_even_when_the_dedup_store_is_down(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """Losing a job is worse than a duplicate runner: publish and count the store error."""
    app = app_for(
        make_app, flavour, REDIS_URL, FLASK_DEDUP_URL=f"redis://127.0.0.1:{free_port()}/0"
    )

    response = post(app.test_client(), job_body(["x64"]))

    assert response.status_code == 200
    assert len(read_queue(app, flavour)) == 1
    registry = dispatcher(app).metrics.registry
    assert registry.get_sample_value("webhook_router_dedup_errors_total") == 1


def _in_flight_elsewhere(app: Flask, body: bytes) -> tuple[DedupStore, str]:
    """Reserve the job's key the way another worker does right before it publishes."""
    key = job_key(parse_job(body, "application/json"))
    store = dispatcher(app).dedup
    assert store.claim(key) is Claim.NEW
    return store, key


def _later(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_copy_waits_for_a_publish_in_progress_and_answers_200_once_it_succeeded(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    """The first copy publishes (simulated: it confirms after 0.3 s); the second gets 200."""
    app = app_for(make_app, flavour, broker)
    body = job_body(["x64"])
    store, key = _in_flight_elsewhere(app, body)
    timer = _later(0.3, lambda: store.confirm(key))

    response = post(app.test_client(), body)
    timer.join()

    assert response.status_code == 200
    assert response.text == "Duplicate delivery: job already queued\n"
    assert read_queue(app, flavour) == []  # the first one's message is the job's only one


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_copy_publishes_itself_when_the_publish_in_progress_fails(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    app = app_for(make_app, flavour, broker)
    body = job_body(["x64"])
    store, key = _in_flight_elsewhere(app, body)
    timer = _later(0.3, lambda: store.release(key))

    response = post(app.test_client(), body)
    timer.join()

    assert response.status_code == 200
    assert response.text == f"Job queued for flavour {flavour}\n"
    assert len(read_queue(app, flavour)) == 1


def test_copy_gets_503_when_the_publish_in_progress_outlives_the_budget(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """The first copy's worker died mid-publish: the reservation outlives the budget."""
    app = app_for(make_app, flavour, REDIS_URL, FLASK_PUBLISH_TIMEOUT_SECONDS="0.5")
    body = job_body(["x64"])
    store, key = _in_flight_elsewhere(app, body)

    response = post(app.test_client(), body)

    assert response.status_code == 503
    assert response.text.startswith("This job is still being queued by another request")
    assert read_queue(app, flavour) == []
    store.release(key)
