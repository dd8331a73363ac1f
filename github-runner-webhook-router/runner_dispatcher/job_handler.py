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
from runner_dispatcher.jobs_api import GitHubUnavailableError, JitRunner, JobNotFoundError, Jobs
from runner_dispatcher.metrics import Metrics
from runner_dispatcher.settings import Settings
from runner_dispatcher.spawner import Spawner, SpawnError, SpawnRequest

logger = logging.getLogger(__name__)
# GitHub limits a runner's name to 64 characters.
RUNNER_NAME_CHARS = 64
# Requeue reasons that say GitHub could not be asked: not an attempt (nothing was tried).
UNAVAILABLE_REASONS = frozenset({"github_unavailable", "jit_config_failed"})


class Outcome(enum.Enum):
    """What becomes of the message after an attempt."""

    ACK = "ack"  # done: a runner took the job (ours or another)
    REJECT = "reject"  # never again: the job is gone
    REQUEUE = "requeue"  # try again later, with backoff
    # Stopping after a spawn, before the pickup was seen: back on the queue, count unchanged,
    # marked as spawned so the next holder watches for the pickup before spawning again.
    HAND_BACK = "hand_back"


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
            self._forget_runner(job, request)
            return Decision(Outcome.REQUEUE, "spawn_failed")
        except BaseException:
            self._forget_runner(job, request)
            raise
        self._metrics.spawn_seconds.labels(flavour).observe(time.monotonic() - started)
        self._metrics.spawned.labels(flavour).inc()
        if state.created_at is not None:
            waited = (datetime.now(UTC) - state.created_at).total_seconds()
            self._metrics.created_to_spawn_seconds.labels(flavour).observe(max(waited, 0.0))
        logger.info(
            "job %s: runner %s spawned (attempt %d)", job.url, request.runner_name, attempt
        )
        return self.watch(job)

    def watch(self, job: QueuedJob) -> Decision:
        """Poll until a runner takes the job, for at most the pickup window.

        Used after a spawn, and before anything else for a message that may already have a
        runner (marked spawned, or redelivered after a crash). Stopping cuts the window
        short: the job is handed back (HAND_BACK) for the next dispatcher to watch.
        """
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
            if stopping:  # looked once more; not taken yet
                return Decision(Outcome.HAND_BACK, "stopping")
        return Decision(Outcome.REQUEUE, "not_picked_up")

    def _request(self, job: QueuedJob, flavour: str, attempt: int) -> SpawnRequest | Decision:
        """The spawn request, with a JIT config when configured; a decision when refused."""
        labels = tuple(
            dict.fromkeys([*self._settings.runner_labels, *sorted(job.labels), flavour.lower()])
        )
        suffix = f"-{job.job_id}-{attempt}-{secrets.token_hex(3)}"
        name = flavour[: RUNNER_NAME_CHARS - len(suffix)] + suffix
        runner: JitRunner | None = None
        if self._settings.jit_config:
            try:
                runner = self._jobs.jit_config(job, name, labels)
            except (JobNotFoundError, GitHubUnavailableError) as exc:
                logger.warning("job %s: no JIT runner configuration: %s", job.url, exc)
                return Decision(Outcome.REQUEUE, "jit_config_failed")
        return SpawnRequest(
            job,
            flavour,
            name,
            labels,
            attempt,
            None if runner is None else runner.encoded_jit_config,
            None if runner is None else runner.runner_id,
        )

    def _forget_runner(self, job: QueuedJob, request: SpawnRequest) -> None:
        """Delete the JIT runner registered for a spawn that failed (else it lingers offline).

        Best effort: a runner left registered is harmless to the job (it never comes
        online) and GitHub removes offline JIT runners by itself after a day.
        """
        if request.runner_id is None:
            return
        try:
            self._jobs.delete_runner(job, request.runner_id)
        except (JobNotFoundError, GitHubUnavailableError) as exc:
            logger.warning(
                "job %s: JIT runner %s left registered: %s", job.url, request.runner_name, exc
            )
