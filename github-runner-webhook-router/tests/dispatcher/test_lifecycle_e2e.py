"""End to end with lifecycle events: router under gunicorn -> broker -> dispatcher processes.

Real: gunicorn with FLASK_LIFECYCLE_EVENTS=true, RabbitMQ, Redis and the embedded broker,
`python -m runner_dispatcher` processes with DISPATCHER_LIFECYCLE_EVENTS=true, the shell
spawner of dispatcher/processes.py. Recorded: GitHub's workflow_job payloads (tests/fixtures),
signed. Faked: GitHub's REST API (dispatcher/fake_github.py, its documented contract), which
reports a job `in_progress` only once the spawner recorded a successful spawn of it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dispatcher.fake_github import FakeGitHub
from dispatcher.processes import DispatcherProcess, job_payload
from dispatcher.support import BROKERS, delete_queue, wait_until
from dispatcher.test_pipeline_e2e import X64, Pipeline
from webhook_router.message import events_queue

_ids = itertools.count(random.randrange(10**12, 10**13, 10**4))  # noqa: S311 - not a secret
brokers = pytest.mark.parametrize("broker", [*BROKERS.values(), None], ids=[*BROKERS, "embedded"])
# Retries wait 10 minutes: within a test only an event ends such a wait.
EVENTS_AND_LONG_BACKOFF = {
    "DISPATCHER_LIFECYCLE_EVENTS": "true",
    "DISPATCHER_BACKOFF_BASE_SECONDS": "600",
    "DISPATCHER_BACKOFF_MAX_SECONDS": "600",
    "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS": "3600",
}
ACKED = "dispatcher_messages_acked_total"


@pytest.fixture
def events_pipeline_on(
    tmp_path: Path, github: FakeGitHub
) -> Iterator[Callable[[str | None], Pipeline]]:
    """Pipelines whose router publishes lifecycle events; their queues deleted afterwards."""
    built: list[Pipeline] = []

    def build(broker: str | None) -> Pipeline:
        pipeline = Pipeline(broker, tmp_path, github)
        pipeline.router.extra_env = {"FLASK_LIFECYCLE_EVENTS": "true"}
        pipeline.router.start()
        built.append(pipeline)
        return pipeline

    yield build
    for pipeline in built:
        pipeline.close()
        for flavour in (pipeline.small, pipeline.large):
            delete_queue(pipeline.broker, tmp_path / "state", events_queue(flavour))


def total(processes: list[DispatcherProcess], name: str, **labels: str) -> float:
    """A sample summed over the processes (labels in the exposition's order: alphabetical)."""
    return sum(process.metric(name, **labels) for process in processes)


def post(pipeline: Pipeline, job_id: int, action: str) -> None:
    body = job_payload(job_id, X64, action, pipeline.github.url)
    assert pipeline.router.post(body) == 200


@brokers
def test_a_job_in_its_backoff_is_acked_without_a_spawn_once_the_router_reports_it_taken(
    events_pipeline_on: Callable[[str | None], Pipeline], broker: str | None
) -> None:
    """Two dispatchers; the first spawn fails; whichever consumes the event, the holder acks."""
    pipeline = events_pipeline_on(broker)
    dispatchers = [pipeline.dispatcher(**EVENTS_AND_LONG_BACKOFF) for _ in range(2)]
    job = next(_ids)
    pipeline.spawns.mark("fail", job)

    post(pipeline, job, "queued")
    wait_until(
        lambda: (
            pipeline.spawns.failures(job) == [1]
            and total(dispatchers, "dispatcher_messages_consumed_total") == 2
            and total(dispatchers, "dispatcher_jobs_in_flight") == 1
        ),
        "the retry to wait out its backoff",
    )
    post(pipeline, job, "in_progress")
    wait_until(
        lambda: total(dispatchers, ACKED, flavour=pipeline.small, reason="taken_event") == 1,
        "the job to be acknowledged",
    )

    wait_until(pipeline.settled, "every message to have an outcome")
    assert pipeline.spawns.lines() == [("fail", job, 1)]  # no second spawn
    assert pipeline.github.gets(job) == 1  # the first attempt's look only
    events = total(
        dispatchers, "dispatcher_events_acked_total", action="in_progress", flavour=pipeline.small
    )
    assert events == 1


@brokers
def test_an_event_consumed_by_one_dispatcher_process_spares_another_the_spawn(
    events_pipeline_on: Callable[[str | None], Pipeline], broker: str | None
) -> None:
    """The only events consumer at the time is the first process; the second holds the job.

    The first has one consumer, kept busy by another job's backoff, so the job waits on the
    queue until the second process starts, after the first recorded the job's event.
    """
    pipeline = events_pipeline_on(broker)
    first = pipeline.dispatcher(**EVENTS_AND_LONG_BACKOFF, DISPATCHER_CONSUMERS="1")
    busy, job = next(_ids), next(_ids)
    pipeline.spawns.mark("fail", busy)
    post(pipeline, busy, "queued")
    wait_until(
        lambda: (
            first.metric("dispatcher_messages_consumed_total") == 2
            and first.metric("dispatcher_jobs_in_flight") == 1
        ),
        "the busy job's backoff",
    )

    post(pipeline, job, "queued")
    post(pipeline, job, "in_progress")
    wait_until(
        lambda: (
            first.metric(
                "dispatcher_events_acked_total", action="in_progress", flavour=pipeline.small
            )
            == 1
        ),
        "the first process to record the event",
    )
    second = pipeline.dispatcher(**EVENTS_AND_LONG_BACKOFF)
    wait_until(
        lambda: second.metric(ACKED, flavour=pipeline.small, reason="taken_event") == 1,
        "the second process to acknowledge the job",
    )

    assert pipeline.spawns.spawned(job) == 0
    assert pipeline.github.gets(job) == 0  # known taken: GitHub was not even asked
    assert second.metric("dispatcher_events_consumed_total") == 0
    post(pipeline, busy, "in_progress")  # lets the first process finish too
    wait_until(pipeline.settled, "every message to have an outcome")
    assert pipeline.spawns.lines() == [("fail", busy, 1)]
