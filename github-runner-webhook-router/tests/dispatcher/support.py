"""Helpers of the dispatcher tests: brokers on 127.0.0.1, queue access, a recording spawner."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatcher.fake_github import FakeGitHub
from kombu.simple import SimpleQueue
from runner_dispatcher.spawner import SpawnError, SpawnRequest
from webhook_router.broker import connection, flavour_queue

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
BROKERS = {"redis": REDIS_URL, "amqp": AMQP_URL}
TOKEN = "ghp_dispatcher_tests"
# Bounds for waiting on a condition: generous, since the machine is shared; never asserted.
WAIT_SECONDS = 60.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Poll `condition` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def job_text(url: str, labels: list[str] | None = None, **extra: object) -> str:
    """A message as the router publishes it: JSON text with labels, status, url (and extras)."""
    return json.dumps({"labels": labels or [], "status": "queued", "url": url, **extra})


def publish(
    broker: str | None,
    state_dir: Path,
    flavour: str,
    payload: str,
    headers: dict[str, Any] | None = None,
) -> None:
    """Put one message on the flavour's queue the way a SimpleQueue producer does."""
    with connection(broker, state_dir, 5.0) as conn:
        queue: SimpleQueue = conn.SimpleQueue(flavour)
        try:
            queue.put(payload, headers=headers or {})
        finally:
            queue.close()


@dataclass
class Queued:
    """A message read back from a queue."""

    payload: Any
    headers: dict[str, Any]


def drain(broker: str | None, state_dir: Path, flavour: str, wait: float = 0.3) -> list[Queued]:
    """Read (and acknowledge) every message on the flavour's queue."""
    found: list[Queued] = []
    with connection(broker, state_dir, 5.0) as conn:
        queue: SimpleQueue = conn.SimpleQueue(flavour)
        try:
            while True:
                try:
                    message = queue.get(timeout=wait)
                except queue.Empty:
                    return found
                found.append(Queued(message.payload, dict(message.headers or {})))
                message.ack()
        finally:
            queue.close()


def delete_queue(broker: str | None, state_dir: Path, flavour: str) -> None:
    """Remove the test's queue (and its exchange on RabbitMQ)."""
    with connection(broker, state_dir, 5.0) as conn:
        bound = flavour_queue(flavour)(conn.default_channel)
        bound.delete()
        if broker is not None and broker.startswith("amqp"):
            bound.exchange.delete()


@dataclass
class RecordingSpawner:
    """A spawner that records each request and, unless told to fail, marks the job taken.

    `failures` says how many spawns fail first (SpawnError); `barrier`, when set, makes each
    spawn wait for that many concurrent spawns (so a test can prove concurrency).
    """

    github: FakeGitHub
    failures: int = 0
    barrier: threading.Barrier | None = None
    take_job: bool = True
    requests: list[SpawnRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spawn(self, request: SpawnRequest) -> None:
        """Record; fail the first `failures` times; else mark the job in progress."""
        if self.barrier is not None:
            self.barrier.wait()
        with self.lock:
            self.requests.append(request)
            if self.failures > 0:
                self.failures -= 1
                raise SpawnError("told to fail")
        if self.take_job:
            with self.github.lock:
                self.github.taken_jobs.add(request.job.job_id)

    def attempts(self) -> list[int]:
        """The attempt numbers of the spawns so far."""
        with self.lock:
            return [request.attempt for request in self.requests]


def base_env(
    github: FakeGitHub, flavour: str, state_dir: Path, broker: str | None
) -> dict[str, str]:
    """Settings for quick tests: tiny backoff and polling, free health port."""
    env = {
        "DISPATCHER_FLAVOURS": flavour,
        "DISPATCHER_SPAWN_COMMAND": "true",
        "DISPATCHER_GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": TOKEN,
        "DISPATCHER_LABELS": "large",
        "DISPATCHER_STATE_DIR": str(state_dir),
        "DISPATCHER_CONSUMERS": "2",
        "DISPATCHER_BACKOFF_BASE_SECONDS": "0.01",
        "DISPATCHER_BACKOFF_MAX_SECONDS": "0.05",
        "DISPATCHER_PICKUP_INTERVAL_SECONDS": "0.02",
        "DISPATCHER_PICKUP_POLLS": "5",
        "DISPATCHER_SPAWN_TIMEOUT_SECONDS": "10",
        "DISPATCHER_GITHUB_TIMEOUT_SECONDS": "2",
        "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS": "60",
        "DISPATCHER_HEALTH_PORT": "0",
        "DISPATCHER_LOG_LEVEL": "DEBUG",
    }
    if broker is not None:
        env["DISPATCHER_BROKER_URL"] = broker
    return env
