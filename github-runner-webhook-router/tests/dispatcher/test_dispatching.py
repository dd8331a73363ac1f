"""The dispatcher against real RabbitMQ and Redis and a local fake of GitHub's REST API.

The fake (dispatcher/fake_github.py) follows GitHub's documented contract for "Get a job for
a workflow run" and "Create configuration for a just-in-time runner"; brokers are the real
servers on 127.0.0.1, with a queue per test.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from pathlib import Path

import pytest
import requests
from dispatcher.conftest import DispatcherFactory
from dispatcher.fake_github import FakeGitHub
from dispatcher.support import (
    BROKERS,
    RecordingSpawner,
    base_env,
    drain,
    job_text,
    publish,
    wait_until,
)
from helpers import free_port
from prometheus_client import generate_latest
from runner_dispatcher.service import Dispatcher
from runner_dispatcher.settings import Settings
from runner_dispatcher.spawner import SpawnRequest

brokers = pytest.mark.parametrize("broker", list(BROKERS.values()), ids=list(BROKERS))


def counter(dispatcher_metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    prefix = f"{name}{{{wanted}}}" if labels else name
    for line in dispatcher_metrics_text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def metrics_text(port: int) -> str:
    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


@brokers
def test_queued_job_spawns_one_runner_and_is_acknowledged_once_picked_up(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner)
    url = github.job_url(101)

    publish(
        broker,
        tmp_path,
        queue_name,
        job_text(url, ["x64", "large"], job_id=101, run_id=7, run_attempt=2, flavour=queue_name),
    )
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_acked_total",
                flavour=queue_name,
                reason="picked_up",
            )
            == 1
        ),
        "the job to be acknowledged",
    )

    assert len(spawner.requests) == 1
    request = spawner.requests[0]
    assert request.job.url == url
    assert (request.job.run_id, request.job.run_attempt, request.attempt) == (7, 2, 1)
    assert request.job.repository == "octo-org/octo-repo"
    assert {"self-hosted", "linux", "x64", "large", queue_name} <= set(request.runner_labels)
    assert drain(broker, tmp_path, queue_name) == []
    text = metrics_text(dispatcher.health_port)
    assert counter(text, "dispatcher_runners_spawned_total", flavour=queue_name) == 1
    assert counter(text, "dispatcher_spawn_seconds_count", flavour=queue_name) == 1
    assert counter(text, "dispatcher_job_created_to_spawn_seconds_count", flavour=queue_name) == 1


@brokers
def test_reference_message_with_only_labels_status_and_url_is_dispatched(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    spawner = RecordingSpawner(github)
    make_dispatcher(broker, spawner)
    text = json.dumps({"labels": ["large", "x64"], "status": "queued", "url": github.job_url(5)})

    publish(broker, tmp_path, queue_name, text)
    wait_until(lambda: github.gets(5) >= 2, "the pickup poll")

    assert [request.job.job_id for request in spawner.requests] == [5]


@brokers
@pytest.mark.parametrize("status", ["in_progress", "completed"])
def test_job_already_taken_is_acknowledged_without_spawning(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
    status: str,
) -> None:
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner)
    github.script(6, status)

    publish(broker, tmp_path, queue_name, job_text(github.job_url(6)))
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_acked_total",
                flavour=queue_name,
                reason="already_taken",
            )
            == 1
        ),
        "the acknowledgement",
    )

    assert spawner.requests == []
    assert drain(broker, tmp_path, queue_name) == []


@brokers
def test_job_github_does_not_know_is_rejected_without_spawning(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner)
    github.unknown.add(404)

    with caplog.at_level(logging.WARNING):
        publish(broker, tmp_path, queue_name, job_text(github.job_url(404)))
        wait_until(
            lambda: (
                counter(
                    metrics_text(dispatcher.health_port),
                    "dispatcher_messages_rejected_total",
                    flavour=queue_name,
                    reason="job_not_found",
                )
                == 1
            ),
            "the rejection",
        )

    assert spawner.requests == []
    assert drain(broker, tmp_path, queue_name) == []
    assert "404" in caplog.text


@brokers
def test_github_failing_then_answering_requeues_then_spawns(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner)
    github.script(8, 500, 502)

    publish(broker, tmp_path, queue_name, job_text(github.job_url(8)))
    wait_until(lambda: len(spawner.requests) == 1, "the spawn")

    # Two requeues that were not attempts (nothing could be tried), then the first attempt.
    assert spawner.attempts() == [1]
    text = metrics_text(dispatcher.health_port)
    assert (
        counter(
            text,
            "dispatcher_messages_requeued_total",
            flavour=queue_name,
            reason="github_unavailable",
        )
        == 2
    )


@brokers
def test_a_github_outage_longer_than_the_attempts_never_uses_them_up(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    """5xx, rate limiting and a refused (expired) token for more deliveries than attempts."""
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner, DISPATCHER_MAX_ATTEMPTS="2")
    github.script(13, 503, 500, 429, 401, 502, 403, 503)

    publish(broker, tmp_path, queue_name, job_text(github.job_url(13)))
    wait_until(lambda: len(spawner.requests) == 1, "the spawn once GitHub is back")
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_acked_total",
                flavour=queue_name,
                reason="picked_up",
            )
            == 1
        ),
        "the acknowledgement",
    )

    assert spawner.attempts() == [1]
    text = metrics_text(dispatcher.health_port)
    assert (
        counter(
            text,
            "dispatcher_messages_requeued_total",
            flavour=queue_name,
            reason="github_unavailable",
        )
        == 7
    )
    assert "dispatcher_messages_rejected_total{" not in text


@brokers
def test_a_job_github_stays_unavailable_for_past_the_outage_bound_is_rejected(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    """The bound is the time since the first unavailable requeue, carried in a header."""
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner, DISPATCHER_GITHUB_OUTAGE_MAX_SECONDS="3600")
    github.script(14, 503)
    since = int(time.time()) - 3601

    publish(
        broker,
        tmp_path,
        queue_name,
        job_text(github.job_url(14)),
        {"X-Dispatcher-Unavailable": 40, "X-Dispatcher-Unavailable-Since": since},
    )
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_rejected_total",
                flavour=queue_name,
                reason="github_unavailable_too_long",
            )
            == 1
        ),
        "the rejection",
    )

    assert spawner.requests == []
    assert drain(broker, tmp_path, queue_name) == []


@brokers
def test_spawn_failures_requeue_with_a_growing_count_until_rejected_after_max_attempts(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    spawner = RecordingSpawner(github, failures=100)
    dispatcher = make_dispatcher(broker, spawner, DISPATCHER_MAX_ATTEMPTS="3")

    publish(broker, tmp_path, queue_name, job_text(github.job_url(9)))
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_rejected_total",
                flavour=queue_name,
                reason="attempts_exhausted",
            )
            == 1
        ),
        "the rejection after the last attempt",
    )

    assert spawner.attempts() == [1, 2, 3]
    assert drain(broker, tmp_path, queue_name) == []


@brokers
def test_message_past_the_attempt_limit_is_rejected_without_asking_github(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner)

    publish(broker, tmp_path, queue_name, job_text(github.job_url(10)), {"X-Process-Count": 5})
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_rejected_total",
                flavour=queue_name,
                reason="too_many_attempts",
            )
            == 1
        ),
        "the rejection",
    )

    assert github.gets(10) == 0
    assert spawner.requests == []


@brokers
def test_runner_that_never_takes_the_job_gets_the_job_requeued(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    spawner = RecordingSpawner(github, take_job=False)
    dispatcher = make_dispatcher(broker, spawner, DISPATCHER_MAX_ATTEMPTS="2")

    publish(broker, tmp_path, queue_name, job_text(github.job_url(11)))
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_rejected_total",
                flavour=queue_name,
                reason="attempts_exhausted",
            )
            == 1
        ),
        "the rejection",
    )

    text = metrics_text(dispatcher.health_port)
    assert (
        counter(
            text, "dispatcher_messages_requeued_total", flavour=queue_name, reason="not_picked_up"
        )
        == 1
    )
    assert spawner.attempts() == [1, 2]
    assert github.gets(11) == 2 * (1 + 5)  # per attempt: the look before, five pickup polls


@brokers
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "malformed"),
        (json.dumps(["a list"]), "malformed"),
        (json.dumps({"labels": None, "url": "x"}), "malformed"),
        ("URL", "bad_url"),
        ("LABELS", "unsupported_labels"),
        ("DEFAULT_LABELS", "unsupported_labels"),
    ],
)
def test_invalid_messages_are_rejected_for_good_with_a_log_line_naming_the_reason(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
    caplog: pytest.LogCaptureFixture,
    payload: str,
    reason: str,
) -> None:
    spawner = RecordingSpawner(github)
    dispatcher = make_dispatcher(broker, spawner)
    payload = {
        "URL": job_text("https://api.github.com/repos/o/r/actions/jobs/1"),
        "LABELS": job_text(github.job_url(12), ["x64", "gpu"]),
        "DEFAULT_LABELS": job_text(github.job_url(12), ["self-hosted", "linux", "x64"]),
    }.get(payload, payload)

    with caplog.at_level(logging.WARNING):
        publish(broker, tmp_path, queue_name, payload)
        wait_until(
            lambda: (
                counter(
                    metrics_text(dispatcher.health_port),
                    "dispatcher_messages_rejected_total",
                    flavour=queue_name,
                    reason=reason,
                )
                == 1
            ),
            "the rejection",
        )

    assert spawner.requests == []
    assert github.requests == []
    assert f"for good: {reason}" in caplog.text
    assert drain(broker, tmp_path, queue_name) == []


@brokers
def test_end_marker_stops_the_dispatcher(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    dispatcher = make_dispatcher(broker, RecordingSpawner(github))

    publish(broker, tmp_path, queue_name, "__END__")

    assert dispatcher.wait(timeout=30)
    assert dispatcher.stopping.is_set()


@brokers
def test_consumers_spawn_several_jobs_at_once(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    """Three spawns must meet at a barrier: only possible when they run concurrently."""
    spawner = RecordingSpawner(github, barrier=threading.Barrier(3, timeout=30))
    make_dispatcher(broker, spawner, DISPATCHER_CONSUMERS="3")

    for job_id in (21, 22, 23):
        publish(broker, tmp_path, queue_name, job_text(github.job_url(job_id)))
    wait_until(lambda: len(spawner.requests) == 3, "three spawns")

    assert sorted(request.job.job_id for request in spawner.requests) == [21, 22, 23]


@brokers
def test_jit_config_is_requested_and_handed_to_the_spawner(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    spawner = RecordingSpawner(github)
    make_dispatcher(broker, spawner, DISPATCHER_JIT_CONFIG="true", DISPATCHER_RUNNER_GROUP_ID="3")

    publish(broker, tmp_path, queue_name, job_text(github.job_url(31), ["x64"]))
    wait_until(lambda: len(spawner.requests) == 1, "the spawn")

    [jit] = github.jit_requests
    request = spawner.requests[0]
    assert jit["path"] == "/repos/octo-org/octo-repo/actions/runners/generate-jitconfig"
    assert jit["name"] == request.runner_name
    assert jit["runner_group_id"] == 3
    assert set(jit["labels"]) == {"self-hosted", "linux", "x64", queue_name}
    assert request.encoded_jit_config
    assert json.loads(base64.b64decode(request.encoded_jit_config)) == {
        "runner": request.runner_name
    }


def test_health_is_503_while_the_broker_is_unreachable_and_200_when_consuming(
    github: FakeGitHub, queue_name: str, tmp_path: Path
) -> None:
    """503 is asserted only once the consumers have failed to connect (a broker error).

    Right after start a healthy dispatcher answers 503 too (not yet connected); the same
    steps against the reachable Redis must end in 200.
    """
    answers = {}
    for name, broker in [
        ("unreachable", f"redis://127.0.0.1:{free_port()}/0"),
        ("reachable", BROKERS["redis"]),
    ]:
        env = base_env(github, queue_name, tmp_path, broker)
        env["DISPATCHER_BROKER_TIMEOUT_SECONDS"] = "0.5"
        dispatcher = Dispatcher(Settings.from_env(env), spawner=RecordingSpawner(github))
        dispatcher.start()
        try:
            health = f"http://127.0.0.1:{dispatcher.health_port}/health"
            if name == "unreachable":
                wait_until(
                    lambda d=dispatcher: (  # type: ignore[misc]
                        counter(metrics_text(d.health_port), "dispatcher_broker_errors_total") >= 2
                    ),
                    "the consumers' connection failures",
                )
            else:
                wait_until(dispatcher.healthy, "the consumers to connect")
            response = requests.get(health, timeout=5)
            answers[name] = (response.status_code, response.json())
        finally:
            dispatcher.stop()
            assert dispatcher.wait(timeout=30)

    assert answers["unreachable"] == (503, {"consumers": 2, "connected": 0})
    assert answers["reachable"] == (200, {"consumers": 2, "connected": 2})


def test_offline_demo_spawns_without_calling_github(
    make_dispatcher: DispatcherFactory, github: FakeGitHub, queue_name: str, tmp_path: Path
) -> None:
    spawner = RecordingSpawner(github)
    broker = BROKERS["redis"]
    dispatcher = make_dispatcher(
        broker,
        spawner,
        DISPATCHER_OFFLINE_DEMO="true",
        DISPATCHER_GITHUB_API_URL="https://api.github.com",
    )
    # The router's URLs are on api.github.com; the demo validates them but never calls.
    dispatcher_url = "https://api.github.com/repos/octo/demo/actions/jobs/77"

    publish(broker, tmp_path, queue_name, job_text(dispatcher_url, ["x64"]))
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_acked_total",
                flavour=queue_name,
                reason="picked_up",
            )
            == 1
        ),
        "the acknowledgement",
    )

    assert [request.job.url for request in spawner.requests] == [dispatcher_url]
    assert github.requests == []


class ExplodingSpawner(RecordingSpawner):
    """A spawner with a bug: it raises something other than SpawnError."""

    def spawn(self, request: SpawnRequest) -> None:
        with self.lock:
            self.requests.append(request)
        raise RuntimeError("bug")


def test_unexpected_spawner_errors_count_as_attempts_so_the_job_is_not_redelivered_for_ever(
    make_dispatcher: DispatcherFactory, github: FakeGitHub, queue_name: str, tmp_path: Path
) -> None:
    spawner = ExplodingSpawner(github)
    broker = BROKERS["amqp"]
    dispatcher = make_dispatcher(broker, spawner, DISPATCHER_MAX_ATTEMPTS="2")

    publish(broker, tmp_path, queue_name, job_text(github.job_url(88)))
    wait_until(
        lambda: (
            counter(
                metrics_text(dispatcher.health_port),
                "dispatcher_messages_rejected_total",
                flavour=queue_name,
                reason="attempts_exhausted",
            )
            == 1
        ),
        "the rejection",
    )

    assert spawner.attempts() == [1, 2]


class BlockingSpawner(RecordingSpawner):
    """Spawns of `blocked` jobs wait until released: a consumer busy with a slow spawn."""

    def __init__(self, github: FakeGitHub, blocked: int) -> None:
        super().__init__(github)
        self.blocked = blocked
        self.entered = threading.Event()
        self.release = threading.Event()

    def spawn(self, request: SpawnRequest) -> None:
        if request.job.job_id == self.blocked:
            self.entered.set()
            assert self.release.wait(60), "never released"
        super().spawn(request)


@brokers
def test_a_busy_consumer_holds_no_second_message_another_dispatcher_could_serve(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
) -> None:
    """Prefetch of one: while A spawns job 41, job 42 goes to B, not to A's buffer."""
    busy = BlockingSpawner(github, blocked=41)
    make_dispatcher(broker, busy, DISPATCHER_CONSUMERS="1")
    publish(broker, tmp_path, queue_name, job_text(github.job_url(41)))
    assert busy.entered.wait(60)
    idle = RecordingSpawner(github)
    make_dispatcher(broker, idle, DISPATCHER_CONSUMERS="1")

    publish(broker, tmp_path, queue_name, job_text(github.job_url(42)))
    try:
        wait_until(lambda: len(idle.requests) == 1, "the idle dispatcher to take job 42")
    finally:
        busy.release.set()

    assert idle.requests[0].job.job_id == 42
    wait_until(lambda: len(busy.requests) == 1, "the busy spawn to finish")


@brokers
@pytest.mark.parametrize("max_attempts", ["1", "5"])
def test_stopping_after_a_spawn_hands_the_job_back_for_the_next_dispatcher_to_watch(
    make_dispatcher: DispatcherFactory,
    github: FakeGitHub,
    queue_name: str,
    tmp_path: Path,
    broker: str,
    max_attempts: str,
) -> None:
    """The runner is booting when the dispatcher is stopped (a rolling restart).

    The job goes back with its attempt count (so even the last attempt is not rejected)
    and marked spawned; the next dispatcher watches for the pickup instead of spawning a
    second runner, and acknowledges once the first runner takes the job.
    """
    slow_pickup = {
        "DISPATCHER_CONSUMERS": "1",
        "DISPATCHER_MAX_ATTEMPTS": max_attempts,
        "DISPATCHER_PICKUP_INTERVAL_SECONDS": "0.2",
        "DISPATCHER_PICKUP_POLLS": "300",
        "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS": "3600",
    }
    first = RecordingSpawner(github, take_job=False)
    stopped = make_dispatcher(broker, first, **slow_pickup)
    publish(broker, tmp_path, queue_name, job_text(github.job_url(15)))
    wait_until(lambda: len(first.requests) == 1, "the spawn")
    stopped.stop()
    assert stopped.wait(timeout=30)
    assert (
        counter(
            metrics_text_of(stopped),
            "dispatcher_messages_requeued_total",
            flavour=queue_name,
            reason="stopping",
        )
        >= 1  # a copy delivered while it stops is handed back untouched too
    )
    assert "dispatcher_messages_rejected_total{" not in metrics_text_of(stopped)

    second = RecordingSpawner(github, take_job=False)
    watching = make_dispatcher(broker, second, **slow_pickup)
    looked = github.gets(15)
    wait_until(lambda: github.gets(15) >= looked + 3, "the next dispatcher to watch the job")
    with github.lock:
        github.taken_jobs.add(15)  # the first runner has booted
    wait_until(
        lambda: (
            counter(
                metrics_text(watching.health_port),
                "dispatcher_messages_acked_total",
                flavour=queue_name,
                reason="picked_up",
            )
            == 1
        ),
        "the acknowledgement",
    )

    assert second.requests == []
    assert len(first.requests) == 1
    assert drain(broker, tmp_path, queue_name) == []


def metrics_text_of(dispatcher: Dispatcher) -> str:
    """The metrics of a dispatcher whose server has closed (read from its registry)."""
    return generate_latest(dispatcher.metrics.registry).decode()


def test_a_failed_spawns_jit_runner_is_deleted_from_github(
    make_dispatcher: DispatcherFactory, github: FakeGitHub, queue_name: str, tmp_path: Path
) -> None:
    spawner = RecordingSpawner(github, failures=1)
    broker = BROKERS["amqp"]
    make_dispatcher(broker, spawner, DISPATCHER_JIT_CONFIG="true")

    publish(broker, tmp_path, queue_name, job_text(github.job_url(32), ["x64"]))
    wait_until(lambda: len(spawner.requests) == 2, "the failed spawn and the next attempt")
    wait_until(lambda: github.gets(32) >= 3, "the pickup poll")

    assert [request.runner_id for request in spawner.requests] == [1, 2]
    assert github.deleted_runners == [1]  # the failed spawn's runner; not the started one
