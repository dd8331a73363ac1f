"""Lifecycle events in the dispatcher: a held job that a runner took is acknowledged, no spawn.

Real: RabbitMQ, Redis and the embedded broker; the router (in-process Flask app, signed
recorded payloads from tests/fixtures) publishing the events to `<flavour>.events`; the
dispatcher in-process. Faked: GitHub's REST API (dispatcher/fake_github.py, following the
documented contract), which reports a job `queued` until the test says it was taken.
"""

from __future__ import annotations

import json
import logging

import pytest
import requests
from dispatcher.conftest import DispatcherFactory
from dispatcher.fake_github import FakeGitHub
from dispatcher.support import (
    BROKERS,
    RecordingSpawner,
    drain,
    job_text,
    publish,
    wait_until,
)
from flask.testing import FlaskClient
from helpers import AppFactory, Poster, job_body, new_job_id
from runner_dispatcher.service import Dispatcher
from webhook_router.message import events_queue

ALL_BROKERS = {**BROKERS, "embedded": None}
brokers = pytest.mark.parametrize("broker", list(ALL_BROKERS.values()), ids=list(ALL_BROKERS))
X64 = ["self-hosted", "x64"]
FIXTURES = {
    "queued": "workflow_job.queued.json",
    "waiting": "workflow_job.waiting.json",
    "in_progress": "workflow_job.in_progress.json",
    "completed": "workflow_job.completed.json",
}
EVENTS = {"DISPATCHER_LIFECYCLE_EVENTS": "true"}
# A retry that would wait 10 minutes: only an event can end it within the test.
LONG_BACKOFF = {
    "DISPATCHER_BACKOFF_BASE_SECONDS": "600",
    "DISPATCHER_BACKOFF_MAX_SECONDS": "600",
    "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS": "3600",
}
# A pickup window of 200 polls: the runner's taking is seen by an event or by GitHub.
LONG_WATCH = {
    "DISPATCHER_PICKUP_POLLS": "200",
    "DISPATCHER_PICKUP_INTERVAL_SECONDS": "0.25",
    "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS": "3600",
}
ACKED = "dispatcher_messages_acked_total"


def sample(dispatcher: Dispatcher, name: str, **labels: str) -> float:
    """A metric's value in the dispatcher's registry (0 when not yet observed)."""
    return dispatcher.metrics.registry.get_sample_value(name, labels) or 0.0


def router(make_app: AppFactory, flavour: str, broker: str | None) -> FlaskClient:
    """The router with lifecycle events on, routing x64 jobs to `flavour` on `broker`."""
    env = {"FLASK_FLAVOURS": f"- {flavour}: [x64]", "FLASK_LIFECYCLE_EVENTS": "true"}
    if broker is not None:
        env["MONGODB_DB_CONNECT_STRING"] = broker
    return make_app(**env).test_client()


def webhook(
    github: FakeGitHub, job_id: int, action: str = "queued", run_attempt: int = 1
) -> bytes:
    """A recorded payload of `action` for the job, its URL on the fake GitHub."""
    return job_body(
        X64,
        action,
        github.job_url(job_id),
        job_id=job_id,
        run_attempt=run_attempt,
        fixture=FIXTURES[action],
    )


@brokers
@pytest.mark.parametrize("action", ["in_progress", "completed"])
def test_a_job_waiting_out_its_backoff_is_acked_without_a_respawn_once_a_runner_took_it(
    make_dispatcher: DispatcherFactory,
    make_app: AppFactory,
    post: Poster,
    github: FakeGitHub,
    queue_name: str,
    caplog: pytest.LogCaptureFixture,
    broker: str | None,
    action: str,
) -> None:
    """The first spawn fails; the retry waits 10 minutes; the router's event ends the wait."""
    caplog.set_level(logging.INFO, logger="runner_dispatcher")
    spawner = RecordingSpawner(github, failures=1)
    dispatcher = make_dispatcher(broker, spawner, **EVENTS, **LONG_BACKOFF)
    client = router(make_app, queue_name, broker)
    job_id = new_job_id()

    assert post(client, webhook(github, job_id)).status_code == 200
    wait_until(
        lambda: (
            sample(dispatcher, "dispatcher_messages_consumed_total", flavour=queue_name) == 2
            and sample(dispatcher, "dispatcher_jobs_in_flight") == 1
        ),
        "the retry to wait out its backoff",
    )
    answer = post(client, webhook(github, job_id, action))
    assert answer.text == f"Event queued for flavour {queue_name}\n"
    # The ack is counted inside the handler, the job leaves the in-flight gauge just after.
    wait_until(
        lambda: (
            sample(dispatcher, ACKED, flavour=queue_name, reason="taken_event") == 1
            and sample(dispatcher, "dispatcher_jobs_in_flight") == 0
        ),
        "the job to be acknowledged and let go",
    )

    assert spawner.attempts() == [1]  # the failed first spawn only
    assert github.gets(job_id) == 1  # the first attempt's look; the retry asked nothing
    events = sample(dispatcher, "dispatcher_events_acked_total", flavour=queue_name, action=action)
    assert events == 1
    assert sample(dispatcher, "dispatcher_jobs_in_flight") == 0
    assert any(
        f"taken by a runner ({action} event, run attempt 1): acknowledged, no spawn"
        in record.getMessage()
        for record in caplog.records
    )
    assert drain(broker, dispatcher.settings.state_dir, queue_name) == []


@brokers
def test_a_spawned_job_watched_for_its_pickup_is_acked_on_the_event_though_github_lags(
    make_dispatcher: DispatcherFactory,
    make_app: AppFactory,
    post: Poster,
    github: FakeGitHub,
    queue_name: str,
    broker: str | None,
) -> None:
    """GitHub keeps answering `queued` (as its API may, for a while); the event is believed."""
    spawner = RecordingSpawner(github, take_job=False)
    dispatcher = make_dispatcher(broker, spawner, **EVENTS, **LONG_WATCH)
    client = router(make_app, queue_name, broker)
    job_id = new_job_id()

    assert post(client, webhook(github, job_id)).status_code == 200
    wait_until(
        lambda: len(spawner.requests) == 1 and github.gets(job_id) >= 2, "the pickup polling"
    )
    assert post(client, webhook(github, job_id, "in_progress")).status_code == 200
    # The ack is counted inside the handler, the job leaves the in-flight gauge just after.
    wait_until(
        lambda: (
            sample(dispatcher, ACKED, flavour=queue_name, reason="taken_event") == 1
            and sample(dispatcher, "dispatcher_jobs_in_flight") == 0
        ),
        "the job to be acknowledged and let go",
    )

    assert len(spawner.requests) == 1
    assert sample(dispatcher, ACKED, flavour=queue_name, reason="picked_up") == 0
    assert sample(dispatcher, "dispatcher_jobs_in_flight") == 0


@pytest.mark.parametrize("broker", list(BROKERS.values()), ids=list(BROKERS))
@pytest.mark.parametrize(
    ("action", "run_attempt"),
    [("waiting", 1), ("in_progress", 2)],
    ids=["waiting", "another_run_attempt"],
)
def test_waiting_events_and_other_run_attempts_leave_the_job_to_github(
    make_dispatcher: DispatcherFactory,
    make_app: AppFactory,
    post: Poster,
    github: FakeGitHub,
    queue_name: str,
    broker: str,
    action: str,
    run_attempt: int,
) -> None:
    """Neither says a runner took this job attempt: the pickup is still GitHub's to tell."""
    spawner = RecordingSpawner(github, take_job=False)
    dispatcher = make_dispatcher(broker, spawner, **EVENTS, **LONG_WATCH)
    client = router(make_app, queue_name, broker)
    job_id = new_job_id()
    assert post(client, webhook(github, job_id)).status_code == 200
    wait_until(
        lambda: len(spawner.requests) == 1 and github.gets(job_id) >= 2, "the pickup polling"
    )

    assert post(client, webhook(github, job_id, action, run_attempt)).status_code == 200
    wait_until(
        lambda: (
            sample(dispatcher, "dispatcher_events_acked_total", flavour=queue_name, action=action)
            == 1
        ),
        "the event to be consumed",
    )
    looked = github.gets(job_id)
    # Two more looks at GitHub: the watcher read the store at least once after the event.
    wait_until(lambda: github.gets(job_id) >= looked + 2, "the watcher to go on polling")
    with github.lock:
        github.taken_jobs.add(job_id)
    wait_until(
        lambda: sample(dispatcher, ACKED, flavour=queue_name, reason="picked_up") == 1,
        "GitHub to report the pickup",
    )

    assert sample(dispatcher, ACKED, flavour=queue_name, reason="taken_event") == 0
    assert len(spawner.requests) == 1


MALFORMED_EVENTS = [
    "not json",
    "__END__",  # the job queue's stop marker means nothing here
    json.dumps(["in_progress", 5, 1]),
    json.dumps({"action": "queued", "job_id": 5, "run_attempt": 1}),
    json.dumps({"action": "in_progress", "job_id": "5", "run_attempt": 1}),
    json.dumps({"action": "in_progress", "job_id": 5}),
]


@brokers
def test_malformed_events_are_rejected_and_counted_and_jobs_still_flow(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    broker: str | None,
) -> None:
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner, **EVENTS)
    state_dir = dispatcher.settings.state_dir

    for payload in MALFORMED_EVENTS:
        publish(broker, state_dir, events_queue(queue_name), payload)
    wait_until(
        lambda: (
            sample(
                dispatcher,
                "dispatcher_events_rejected_total",
                flavour=queue_name,
                reason="malformed",
            )
            == len(MALFORMED_EVENTS)
        ),
        "the events to be rejected",
    )
    job_id = new_job_id()
    publish(
        broker, state_dir, queue_name, job_text(github.job_url(job_id), ["x64"], run_attempt=1)
    )
    wait_until(
        lambda: sample(dispatcher, ACKED, flavour=queue_name, reason="picked_up") == 1,
        "the job to be done",
    )

    assert [request.job.job_id for request in spawner.requests] == [job_id]
    assert drain(broker, state_dir, events_queue(queue_name)) == []  # rejected for good
    assert sample(dispatcher, "dispatcher_events_requeued_total", flavour=queue_name) == 0
    assert sample(dispatcher, "dispatcher_events_consumed_total", flavour=queue_name) == len(
        MALFORMED_EVENTS
    )
    health = requests.get(f"http://127.0.0.1:{dispatcher.health_port}/health", timeout=5)
    assert health.json() == {"consumers": 2, "connected": 2, "events_connected": True}
