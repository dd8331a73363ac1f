"""Duplicate deliveries: the store contract (Redis and SQLite) and the webhook behaviour."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from helpers import REDIS_URL, AppFactory, Poster, Reader, dispatcher, free_port, job_body
from webhook_router.dedup import Claim, DedupStore, RedisDedupStore, SqliteDedupStore

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


def test_duplicate_delivery_is_answered_200_and_published_once(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", MONGODB_DB_CONNECT_STRING=REDIS_URL)
    client = app.test_client()
    delivery = str(uuid.uuid4())

    responses = [post(client, job_body(["x64"]), delivery=delivery) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert responses[1].text == "Duplicate delivery: job already queued\n"
    assert len(read_queue(app, flavour)) == 1
    registry = dispatcher(app).metrics.registry
    labels = {"outcome": "duplicate", "flavour": flavour, "reason": ""}
    assert registry.get_sample_value("webhook_router_webhooks_total", labels) == 2


def test_duplicates_are_suppressed_with_the_embedded_sqlite_store(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]")
    second = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]")  # another worker, same state dir
    delivery = str(uuid.uuid4())

    assert post(app.test_client(), job_body(["x64"]), delivery=delivery).status_code == 200
    assert post(second.test_client(), job_body(["x64"]), delivery=delivery).status_code == 200

    assert len(read_queue(app, flavour)) == 1


def test_deliveries_without_an_id_or_with_dedup_off_are_all_published(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", FLASK_DEDUP_WINDOW_SECONDS="0")
    client = app.test_client()

    post(client, job_body(["x64"]), delivery="same")
    post(client, job_body(["x64"]), delivery="same")

    assert len(read_queue(app, flavour)) == 2


def test_job_is_published_even_when_the_dedup_store_is_down(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """Losing a job is worse than a duplicate runner: publish and count the store error."""
    app = make_app(
        FLASK_FLAVOURS=f"- {flavour}: [x64]",
        MONGODB_DB_CONNECT_STRING=REDIS_URL,
        FLASK_DEDUP_URL=f"redis://127.0.0.1:{free_port()}/0",
    )

    response = post(app.test_client(), job_body(["x64"]))

    assert response.status_code == 200
    assert len(read_queue(app, flavour)) == 1
    registry = dispatcher(app).metrics.registry
    assert registry.get_sample_value("webhook_router_dedup_errors_total") == 1


def test_delivery_being_published_elsewhere_gets_409_so_it_stays_redeliverable(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", MONGODB_DB_CONNECT_STRING=REDIS_URL)
    delivery = str(uuid.uuid4())
    dispatcher(app).dedup.claim(delivery)  # another worker is mid-publish

    response = post(app.test_client(), job_body(["x64"]), delivery=delivery)

    assert response.status_code == 409
    assert read_queue(app, flavour) == []
    dispatcher(app).dedup.release(delivery)
