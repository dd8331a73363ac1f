"""One attempt at a job: ask GitHub, spawn a runner, wait for it to take the job."""

from __future__ import annotations

import enum
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from runner_dispatcher.contract import QueuedJob
from runner_dispatcher.jobs_api import GitHubUnavailableError, JobNotFoundError, Jobs
from runner_dispatcher.metrics import Metrics
from runner_dispatcher.settings import Settings
from runner_dispatcher.spawner import Spawner, SpawnError, SpawnRequest

logger = logging.getLogger(__name__)
# GitHub limits a runner's name to 64 characters.
RUNNER_NAME_CHARS = 64


class Outcome(enum.Enum):
    """What becomes of the message after an attempt."""

    ACK = "ack"  # done: a runner took the job (ours or another)
    REJECT = "reject"  # never again: the job is gone
    REQUEUE = "requeue"  # try again later, with backoff


@dataclass(frozen=True)
class Decision:
    """The outcome and its bounded reason (a metric label and a log word)."""

    outcome: Outcome
    reason: str


class JobHandler:
    """The steps of one attempt, without the broker (the consumer applies the decision).

    Used by one consumer thread; `stop` cuts the pickup polling short at shutdown.
    """

    def __init__(
        self,
        settings: Settings,
        jobs: Jobs,
        spawner: Spawner,
        metrics: Metrics,
        stop: threading.Event,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._spawner = spawner
        self._metrics = metrics
        self._stop = stop

    def attempt(self, job: QueuedJob, flavour: str, attempt: int) -> Decision:
        """Run one attempt at `job`, taken from `flavour`'s queue; `attempt` counts from 1."""
        try:
            state = self._jobs.state(job)
        except JobNotFoundError:
            logger.warning("job %s: rejected for good, GitHub has no such job (404)", job.url)
            return Decision(Outcome.REJECT, "job_not_found")
        except GitHubUnavailableError as exc:
            logger.warning("job %s: GitHub unavailable before spawning: %s", job.url, exc)
            return Decision(Outcome.REQUEUE, "github_unavailable")
        if state.taken:
            return Decision(Outcome.ACK, "already_taken")
        request = self._request(job, flavour, attempt)
        if isinstance(request, Decision):
            return request
        started = time.monotonic()
        try:
            self._spawner.spawn(request)
        except SpawnError as exc:
            logger.warning("job %s: spawn failed (attempt %d): %s", job.url, attempt, exc)
            return Decision(Outcome.REQUEUE, "spawn_failed")
        self._metrics.spawn_seconds.labels(flavour).observe(time.monotonic() - started)
        self._metrics.spawned.labels(flavour).inc()
        if state.created_at is not None:
            waited = (datetime.now(UTC) - state.created_at).total_seconds()
            self._metrics.created_to_spawn_seconds.labels(flavour).observe(max(waited, 0.0))
        logger.info(
            "job %s: runner %s spawned (attempt %d)", job.url, request.runner_name, attempt
        )
        return self._await_pickup(job)

    def _request(self, job: QueuedJob, flavour: str, attempt: int) -> SpawnRequest | Decision:
        """The spawn request, with a JIT config when configured; a decision when refused."""
        labels = tuple(
            dict.fromkeys([*self._settings.runner_labels, *sorted(job.labels), flavour.lower()])
        )
        suffix = f"-{job.job_id}-{attempt}-{secrets.token_hex(3)}"
        name = flavour[: RUNNER_NAME_CHARS - len(suffix)] + suffix
        config = None
        if self._settings.jit_config:
            try:
                config = self._jobs.jit_config(job, name, labels)
            except (JobNotFoundError, GitHubUnavailableError) as exc:
                logger.warning("job %s: no JIT runner configuration: %s", job.url, exc)
                return Decision(Outcome.REQUEUE, "jit_config_failed")
        return SpawnRequest(job, flavour, name, labels, attempt, config)

    def _await_pickup(self, job: QueuedJob) -> Decision:
        """Poll until a runner takes the job; at shutdown, look once more and stop polling."""
        for _ in range(self._settings.pickup_polls):
            stopping = self._stop.wait(self._settings.pickup_interval_seconds)
            try:
                if self._jobs.state(job).taken:
                    return Decision(Outcome.ACK, "picked_up")
            except JobNotFoundError:
                logger.warning("job %s: rejected for good, the job is gone (404)", job.url)
                return Decision(Outcome.REJECT, "job_not_found")
            except GitHubUnavailableError as exc:
                logger.warning("job %s: GitHub unavailable while polling: %s", job.url, exc)
            if stopping:
                break
        return Decision(Outcome.REQUEUE, "not_picked_up")
