"""in_progress / completed / waiting events: wait and run time metrics, optional events queue.

Recorded GitHub payloads (tests/fixtures) with fresh job ids; real Redis and RabbitMQ and the
embedded broker; queues read back with kombu's SimpleQueue.
"""

from __future__ import annotations

import pytest
from flask import Flask
from helpers import (
    AMQP_URL,
    REDIS_URL,
    AppFactory,
    Poster,
    Reader,
    dispatcher,
    job_body,
    new_job_id,
)
from webhook_router.message import events_queue

BROKERS = {"embedded": None, "redis": REDIS_URL, "rabbitmq": AMQP_URL}
FIXTURES = {
    "queued": "workflow_job.queued.json",
    "waiting": "workflow_job.waiting.json",
    "in_progress": "workflow_job.in_progress.json",
    "completed": "workflow_job.completed.json",
}


def event(action: str, job_id: int, labels: list[str] | None = None, **fields: object) -> bytes:
    """The recorded payload of this action for job `job_id` with x64 labels."""
    return job_body(
        labels or ["self-hosted", "x64"],
        action=action,
        job_id=job_id,
        fixture=FIXTURES[action],
        extra=fields,
    )


def app_for(make_app: AppFactory, flavour: str, broker: str | None, **env: str) -> Flask:
    if broker is not None:
        env["MONGODB_DB_CONNECT_STRING"] = broker
    return make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", **env)


def sample(app: Flask, name: str, flavour: str) -> float | None:
    return dispatcher(app).metrics.registry.get_sample_value(name, {"flavour": flavour})


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_lifecycle_events_go_to_the_events_queue_once_each_when_enabled(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    app = app_for(make_app, flavour, broker, FLASK_LIFECYCLE_EVENTS="true")
    client = app.test_client()
    job_id = new_job_id()

    answers = [
        post(client, event(action, job_id)).text
        for action in ("queued", "waiting", "queued", "in_progress", "in_progress", "completed")
    ]

    assert answers == [
        f"Job queued for flavour {flavour}\n",
        f"Event queued for flavour {flavour}\n",
        "Duplicate delivery: job already queued\n",
        f"Event queued for flavour {flavour}\n",
        "Duplicate delivery: event already queued\n",
        f"Event queued for flavour {flavour}\n",
    ]
    (job,) = read_queue(app, flavour)
    assert set(job) == {
        "labels",
        "status",
        "url",
        "job_id",
        "run_id",
        "run_attempt",
        "repository",
        "flavour",
    }
    events = read_queue(app, events_queue(flavour))
    assert [(message["action"], message["job_id"]) for message in events] == [
        ("waiting", job_id),
        ("in_progress", job_id),
        ("completed", job_id),
    ]
    assert events[1]["flavour"] == flavour
    assert events[1]["run_attempt"] == 1
    assert events[1]["repository"] == "Codertocat/Hello-World"


def test_lifecycle_events_are_off_by_default(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = app_for(make_app, flavour, REDIS_URL)

    response = post(app.test_client(), event("in_progress", new_job_id()))

    assert response.text == "Ignored: only queued jobs are routed\n"
    assert read_queue(app, events_queue(flavour)) == []
    assert read_queue(app, flavour) == []


def test_events_of_jobs_no_flavour_serves_are_not_published(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = app_for(make_app, flavour, REDIS_URL, FLASK_LIFECYCLE_EVENTS="true")

    response = post(app.test_client(), event("in_progress", new_job_id(), ["windows"]))

    assert response.text == "Ignored: only queued jobs are routed\n"
    assert read_queue(app, events_queue(flavour)) == []


def test_wait_and_run_times_are_observed_per_flavour_and_never_queued(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = app_for(make_app, flavour, None)
    client = app.test_client()
    job_id = new_job_id()

    post(
        client,
        event(
            "in_progress",
            job_id,
            created_at="2021-09-13T02:19:43Z",
            started_at="2021-09-13T02:21:13Z",
        ),
    )
    post(client, event("completed", job_id))  # recorded: 10:34:58 -> 10:38:16, a runner ran it

    assert sample(app, "webhook_router_job_wait_seconds_count", flavour) == 1
    assert sample(app, "webhook_router_job_wait_seconds_sum", flavour) == 90
    assert sample(app, "webhook_router_job_run_seconds_count", flavour) == 1
    assert sample(app, "webhook_router_job_run_seconds_sum", flavour) == 198
    assert read_queue(app, flavour) == []


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("in_progress", {}),  # the recorded in_progress example has no created_at
        ("in_progress", {"created_at": "yesterday", "started_at": "2021-09-13T02:21:13Z"}),
        ("in_progress", {"created_at": "2021-09-13T02:22:00Z"}),  # started before created
        ("completed", {"runner_name": None}),  # cancelled before any runner took it
    ],
)
def test_times_that_are_missing_or_make_no_sense_are_not_observed(
    make_app: AppFactory, post: Poster, flavour: str, action: str, fields: dict[str, object]
) -> None:
    app = app_for(make_app, flavour, None)

    response = post(app.test_client(), event(action, new_job_id(), None, **fields))

    assert response.status_code == 200
    for name in ("webhook_router_job_wait_seconds_count", "webhook_router_job_run_seconds_count"):
        assert not sample(app, name, flavour)
