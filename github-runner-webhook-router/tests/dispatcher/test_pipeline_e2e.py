"""End to end: GitHub payloads -> router -> broker -> dispatchers -> spawner, and the faults.

Signed recorded payloads go to the router under gunicorn. Real: gunicorn, RabbitMQ and
Redis (the shared servers, or a private redis-server for the restart), `python -m
runner_dispatcher` processes, a shell-script spawner. Recorded: GitHub's published
workflow_job payloads (tests/fixtures). Faked: GitHub's REST API, by a local server that
follows the documented contract (dispatcher/fake_github.py); it reports a job `in_progress`
once the spawner has recorded a successful spawn of it.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from dispatcher.fake_github import FakeGitHub, running
from dispatcher.processes import (
    DispatcherProcess,
    RedisServer,
    Router,
    SpawnLog,
    job_payload,
)
from dispatcher.support import BROKERS, TOKEN, delete_queue, wait_until

_ids = itertools.count(random.randrange(10**9, 10**12, 10**4))  # noqa: S311 - not a secret
X64 = ["self-hosted", "linux", "X64"]
LARGE = ["self-hosted", "Linux", "x64", "Large"]


class Pipeline:
    """One router, the fake GitHub, the spawn log, and dispatchers started on demand."""

    def __init__(self, broker: str | None, tmp_path: Path, github: FakeGitHub) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.small, self.large = f"small-{suffix}", f"large-{suffix}"
        self.broker = broker
        self.tmp_path = tmp_path
        self.github = github
        self.spawns = SpawnLog(tmp_path / "spawner")
        github.taken = lambda job_id: self.spawns.spawned(job_id) > 0
        self.router = Router(
            f"- {self.small}: [x64]\n- {self.large}: [x64, large]", broker, tmp_path / "state"
        )
        self.dispatchers: list[DispatcherProcess] = []

    def dispatcher(self, **overrides: str) -> DispatcherProcess:
        env = {
            "DISPATCHER_FLAVOURS": f"{self.small},{self.large}",
            "DISPATCHER_LABELS": "large",
            "DISPATCHER_SPAWN_COMMAND": str(self.spawns.script),
            "DISPATCHER_SPAWN_PASS_ENV": "SPAWN_DIR",
            "SPAWN_DIR": str(self.spawns.directory),
            "DISPATCHER_GITHUB_API_URL": self.github.url,
            "GITHUB_TOKEN": TOKEN,
            "DISPATCHER_STATE_DIR": str(self.tmp_path / "state"),
            "DISPATCHER_CONSUMERS": "2",
            "DISPATCHER_MAX_ATTEMPTS": "3",
            "DISPATCHER_BACKOFF_BASE_SECONDS": "0.05",
            "DISPATCHER_BACKOFF_MAX_SECONDS": "0.2",
            "DISPATCHER_PICKUP_INTERVAL_SECONDS": "0.05",
            "DISPATCHER_PICKUP_POLLS": "3",
            # Generous bounds on a shared 2-core machine (the fake answers in milliseconds);
            # the longest hold (about 30 s) stays under Redis's visibility timeout.
            "DISPATCHER_SPAWN_TIMEOUT_SECONDS": "5",
            "DISPATCHER_GITHUB_TIMEOUT_SECONDS": "3",
            "DISPATCHER_BROKER_TIMEOUT_SECONDS": "1",
            "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS": "40",
            "DISPATCHER_LOG_LEVEL": "INFO",
            **overrides,
        }
        if self.broker is not None:
            env["DISPATCHER_BROKER_URL"] = self.broker
        log = self.tmp_path / f"dispatcher-{len(self.dispatchers)}.log"
        process = DispatcherProcess(env, log).start()
        self.dispatchers.append(process)
        return process

    def post_job(self, labels: list[str], action: str = "queued") -> int:
        """Post a new job's webhook; returns its id (the router must answer 200)."""
        job_id = next(_ids)
        assert self.router.post(job_payload(job_id, labels, action, self.github.url)) == 200
        return job_id

    def settled(self) -> bool:
        """Every message consumed has an outcome, in every running dispatcher."""
        for process in self.dispatchers:
            if process.process is None:
                continue
            consumed = process.metric("dispatcher_messages_consumed_total")
            done = sum(
                process.metric(name)
                for name in (
                    "dispatcher_messages_acked_total",
                    "dispatcher_messages_rejected_total",
                    "dispatcher_messages_requeued_total",
                )
            )
            if consumed != done or process.metric("dispatcher_jobs_in_flight") != 0:
                return False
        return True

    def close(self) -> None:
        for process in self.dispatchers:
            if process.process is not None:
                assert process.terminate() == 0
        self.router.stop()
        for flavour in (self.small, self.large):
            delete_queue(self.broker, self.tmp_path / "state", flavour)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with running(FakeGitHub(token=TOKEN)) as server:
        yield server


@pytest.fixture
def pipeline_on(tmp_path: Path, github: FakeGitHub) -> Iterator[Callable[[str | None], Pipeline]]:
    built: list[Pipeline] = []

    def build(broker: str | None) -> Pipeline:
        pipeline = Pipeline(broker, tmp_path, github)
        pipeline.router.start()
        built.append(pipeline)
        return pipeline

    yield build
    for pipeline in built:
        pipeline.close()


brokers = pytest.mark.parametrize("broker", [*BROKERS.values(), None], ids=[*BROKERS, "embedded"])


@brokers
def test_each_queued_job_spawns_exactly_once_and_ignored_or_unmatched_ones_never(
    pipeline_on: Callable[[str | None], Pipeline], broker: str
) -> None:
    pipeline = pipeline_on(broker)
    first, second = pipeline.dispatcher(), pipeline.dispatcher()

    queued = [pipeline.post_job(X64), pipeline.post_job(LARGE), pipeline.post_job(X64)]
    ignored = [
        pipeline.post_job(X64, action) for action in ("waiting", "in_progress", "completed")
    ]
    unmatched = pipeline.post_job(["self-hosted", "linux", "gpu"])
    # A redelivery of the first job (same delivery id) and a copy with a new delivery id.
    body = job_payload(queued[0], X64, "queued", pipeline.github.url)
    delivery = str(uuid.uuid4())
    assert pipeline.router.post(body, delivery) == 200
    assert pipeline.router.post(body, delivery) == 200
    assert pipeline.router.post(body) == 200

    wait_until(lambda: all(pipeline.spawns.spawned(job) for job in queued), "the spawns")
    wait_until(pipeline.settled, "every message to have an outcome")

    assert [pipeline.spawns.spawned(job) for job in queued] == [1, 1, 1]
    assert all(pipeline.spawns.spawned(job) == 0 for job in [*ignored, unmatched])
    assert len(pipeline.spawns.lines()) == 3
    flavours = {line.split()[1]: line.split()[3] for line in _log_lines(pipeline)}
    assert flavours[str(queued[1])] == pipeline.large
    assert flavours[str(queued[0])] == pipeline.small
    spawned = sum(
        process.metric("dispatcher_runners_spawned_total") for process in (first, second)
    )
    assert spawned == 3


def _log_lines(pipeline: Pipeline) -> list[str]:
    return (pipeline.spawns.directory / "spawns.log").read_text().splitlines()


@brokers
def test_dispatcher_killed_mid_spawn_leaves_the_job_to_another_dispatcher(
    pipeline_on: Callable[[str | None], Pipeline], broker: str
) -> None:
    pipeline = pipeline_on(broker)
    victim = pipeline.dispatcher()
    job = next(_ids)
    pipeline.spawns.mark("hang", job)

    assert pipeline.router.post(job_payload(job, X64, "queued", pipeline.github.url)) == 200
    wait_until(lambda: pipeline.spawns.hanging_pid(job) is not None, "the hanging spawn")
    victim.kill()
    hanging = pipeline.spawns.hanging_pid(job)
    assert hanging is not None
    os.kill(hanging, signal.SIGKILL)  # its half-started runner dies with it
    pipeline.dispatcher()

    wait_until(lambda: pipeline.spawns.spawned(job) == 1, "the respawn by the other dispatcher")
    wait_until(pipeline.settled, "every message to have an outcome")
    assert pipeline.spawns.spawned(job) == 1


@pytest.mark.parametrize("broker", [BROKERS["amqp"], None], ids=["amqp", "embedded"])
def test_dispatcher_killed_while_watching_for_the_pickup_leaves_the_runner_to_be_watched(
    pipeline_on: Callable[[str | None], Pipeline], broker: str | None
) -> None:
    """SIGKILL after a successful spawn, while the runner boots: no second runner.

    The message comes back (RabbitMQ's redelivery; the held-message journal on the
    embedded broker); the next dispatcher watches the job for the pickup window before
    spawning, and sees the first runner take it.
    """
    pipeline = pipeline_on(broker)
    job = next(_ids)
    booting = {job}
    pipeline.github.taken = lambda job_id: (
        pipeline.spawns.spawned(job_id) > 0 and job_id not in booting
    )
    watch_long = {"DISPATCHER_PICKUP_POLLS": "60", "DISPATCHER_PICKUP_INTERVAL_SECONDS": "0.5"}
    victim = pipeline.dispatcher(**watch_long)

    assert pipeline.router.post(job_payload(job, X64, "queued", pipeline.github.url)) == 200
    wait_until(lambda: pipeline.spawns.spawned(job) == 1, "the spawn")
    looked = pipeline.github.gets(job)
    wait_until(lambda: pipeline.github.gets(job) > looked, "the pickup polling")
    victim.kill()
    successor = pipeline.dispatcher(**watch_long)
    wait_until(
        lambda: successor.metric("dispatcher_messages_consumed_total") >= 1,
        "the successor to get the job back",
    )
    looked = pipeline.github.gets(job)
    wait_until(lambda: pipeline.github.gets(job) >= looked + 2, "the successor to look")
    booting.clear()  # the first runner takes the job

    wait_until(pipeline.settled, "every message to have an outcome")
    assert pipeline.spawns.spawned(job) == 1
    assert (
        successor.metric(
            "dispatcher_messages_acked_total", flavour=pipeline.small, reason="picked_up"
        )
        == 1
    )


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop and start."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_broker_restart_is_survived_by_the_router_and_the_dispatcher(
    private_redis: RedisServer, pipeline_on: Callable[[str | None], Pipeline]
) -> None:
    pipeline = pipeline_on(private_redis.url)
    dispatcher = pipeline.dispatcher()
    before = pipeline.post_job(X64)
    wait_until(lambda: pipeline.spawns.spawned(before) == 1, "the first spawn")

    private_redis.stop()
    during = next(_ids)
    body = job_payload(during, X64, "queued", pipeline.github.url)
    delivery = str(uuid.uuid4())
    assert pipeline.router.post(body, delivery) == 503
    wait_until(lambda: not _healthy(dispatcher), "the dispatcher to notice the outage")
    private_redis.start()

    # GitHub's redelivery of the failed delivery, then a new job.
    wait_until(lambda: pipeline.router.post(body, delivery) == 200, "the router to resume")
    after = pipeline.post_job(LARGE)
    wait_until(
        lambda: pipeline.spawns.spawned(during) == 1 and pipeline.spawns.spawned(after) == 1,
        "the dispatcher to resume",
    )
    wait_until(lambda: _healthy(dispatcher), "the dispatcher's health to recover")
    assert pipeline.spawns.spawned(before) == 1


def _healthy(process: DispatcherProcess) -> bool:
    return requests.get(process.health_url, timeout=5).status_code == 200


def test_github_answering_500_then_200_gets_the_job_requeued_then_spawned(
    pipeline_on: Callable[[str | None], Pipeline],
) -> None:
    pipeline = pipeline_on(BROKERS["amqp"])
    dispatcher = pipeline.dispatcher()
    job = next(_ids)
    pipeline.github.script(job, 500)

    assert pipeline.router.post(job_payload(job, X64, "queued", pipeline.github.url)) == 200
    wait_until(lambda: pipeline.spawns.spawned(job) == 1, "the spawn")

    # A requeue because GitHub failed is not an attempt: the spawn is attempt 1.
    assert pipeline.spawns.lines() == [("ok", job, 1)]
    requeued = dispatcher.metric(
        "dispatcher_messages_requeued_total", flavour=pipeline.small, reason="github_unavailable"
    )
    assert requeued == 1


def test_failing_spawner_requeues_with_a_growing_count_until_rejected(
    pipeline_on: Callable[[str | None], Pipeline],
) -> None:
    pipeline = pipeline_on(BROKERS["amqp"])
    dispatcher = pipeline.dispatcher()
    job = next(_ids)
    pipeline.spawns.mark("fail", job)

    assert pipeline.router.post(job_payload(job, X64, "queued", pipeline.github.url)) == 200
    wait_until(
        lambda: (
            dispatcher.metric(
                "dispatcher_messages_rejected_total",
                flavour=pipeline.small,
                reason="attempts_exhausted",
            )
            == 1
        ),
        "the rejection",
    )

    assert pipeline.spawns.failures(job) == [1, 2, 3]
    assert pipeline.spawns.spawned(job) == 0


def test_sigterm_during_the_backoff_releases_the_job_with_its_attempt_count(
    pipeline_on: Callable[[str | None], Pipeline],
) -> None:
    pipeline = pipeline_on(BROKERS["amqp"])
    slow = pipeline.dispatcher(
        DISPATCHER_BACKOFF_BASE_SECONDS="600", DISPATCHER_BACKOFF_MAX_SECONDS="600"
    )
    job = next(_ids)
    pipeline.spawns.mark("fail", job)

    assert pipeline.router.post(job_payload(job, X64, "queued", pipeline.github.url)) == 200
    wait_until(lambda: pipeline.spawns.failures(job) == [1], "the first, failed attempt")
    wait_until(lambda: slow.metric("dispatcher_jobs_in_flight") == 1, "the backoff wait")
    assert slow.terminate() == 0  # well before the 600 s backoff is over
    (pipeline.spawns.directory / f"fail-{job}").unlink()
    pipeline.dispatcher()

    wait_until(lambda: pipeline.spawns.spawned(job) == 1, "the spawn by the next dispatcher")
    assert pipeline.spawns.lines() == [("fail", job, 1), ("ok", job, 2)]


def test_local_run_configuration_spawns_with_the_demo_spawner_on_the_embedded_broker(
    tmp_path: Path,
) -> None:
    """The configuration scripts/run uses: embedded broker, demo spawner, no GitHub."""
    state = tmp_path / "state"
    router = Router("- small: [x64]\n- large: [x64, large]", None, state).start()
    log = tmp_path / "dispatcher.log"
    dispatcher = DispatcherProcess(
        {
            "DISPATCHER_FLAVOURS": "small,large",
            "DISPATCHER_LABELS": "large",
            "DISPATCHER_STATE_DIR": str(state),
            "DISPATCHER_SPAWN_COMMAND": "python -m runner_dispatcher.demo_spawner",
            "DISPATCHER_OFFLINE_DEMO": "true",
            "DISPATCHER_PICKUP_INTERVAL_SECONDS": "0.5",
        },
        log,
    ).start()
    try:
        job = next(_ids)
        body = job_payload(job, LARGE, "queued", "https://api.github.com")
        assert router.post(body) == 200

        wait_until(
            lambda: (
                dispatcher.metric(
                    "dispatcher_messages_acked_total", flavour="large", reason="picked_up"
                )
                == 1
            ),
            "the demo job to be done",
        )
        assert dispatcher.terminate() == 0
    finally:
        if dispatcher.process is not None:
            dispatcher.kill()
        router.stop()
    text = log.read_text()
    assert "demo spawner: would start runner large-" in text
    assert f"/actions/jobs/{job} labels self-hosted,linux,large,x64" in text


def test_sigterm_during_a_spawn_lets_it_finish_and_requeues_the_job(
    pipeline_on: Callable[[str | None], Pipeline],
) -> None:
    """SIGTERM lets the hanging spawn run until its timeout kills it; the job comes back.

    That failed attempt is requeued with its count and spawned by the next dispatcher.
    """
    pipeline = pipeline_on(BROKERS["amqp"])
    stopping = pipeline.dispatcher()
    job = next(_ids)
    pipeline.spawns.mark("hang", job)

    assert pipeline.router.post(job_payload(job, X64, "queued", pipeline.github.url)) == 200
    wait_until(lambda: pipeline.spawns.hanging_pid(job) is not None, "the hanging spawn")
    assert stopping.terminate() == 0
    pipeline.dispatcher()

    wait_until(lambda: pipeline.spawns.spawned(job) == 1, "the spawn by the next dispatcher")
    assert pipeline.spawns.lines() == [("ok", job, 2)]
    assert stopping.log_path.read_text().count("spawner still running after 5 s: killed") == 1
