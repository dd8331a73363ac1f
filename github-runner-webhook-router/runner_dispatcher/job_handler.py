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
from runner_dispatcher.taken import TakenStore, TakenStoreError

logger = logging.getLogger(__name__)
# GitHub limits a runner's name to 64 characters.
RUNNER_NAME_CHARS = 64
# Requeue reasons that say GitHub could not be asked: not an attempt (nothing was tried).
UNAVAILABLE_REASONS = frozenset({"github_unavailable", "jit_config_failed"})
# The ack reason of a job a lifecycle event said a runner took.
TAKEN_EVENT = "taken_event"
# How often a waiting consumer looks at the taken-jobs store (a local SQLite read).
TAKEN_POLL_SECONDS = 0.5


class Outcome(enum.Enum):
    """What becomes of the message after an attempt."""

    ACK = "ack"  # done: a runner took the job (ours or another)
    REJECT = "reject"  # never again: the job is gone
    REQUEUE = "requeue"  # try again later, with backoff
    # Stopping after a spawn, before the pickup was seen: back on the queue, count unchanged,
    # marked as spawned so the next holder watches for the pickup before spawning again.
    HAND_BACK = "hand_back"


class Pause(enum.Enum):
    """How a wait ended."""

    ELAPSED = "elapsed"
    STOPPING = "stopping"  # the dispatcher is stopping
    TAKEN = "taken"  # a lifecycle event said a runner took the job


@dataclass(frozen=True)
class Decision:
    """The outcome and its bounded reason (a metric label and a log word)."""

    outcome: Outcome
    reason: str


class JobHandler:
    """The steps of one attempt, without the broker (the consumer applies the decision).

    Used by one consumer thread; `stop` cuts the pickup polling short at shutdown. With
    `taken` (lifecycle events on), a job attempt an event said a runner took is acknowledged
    without spawning (`taken_event`) whenever it is looked at: before asking GitHub, right
    before the spawn, and throughout the waits (backoff, pickup polling).
    """

    def __init__(
        self,
        settings: Settings,
        jobs: Jobs,
        spawner: Spawner,
        metrics: Metrics,
        stop: threading.Event,
        taken: TakenStore | None = None,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._spawner = spawner
        self._metrics = metrics
        self._stop = stop
        self._taken = taken

    def pause(self, job: QueuedJob, seconds: float) -> Pause:
        """Wait `seconds`, cut short by a stop or, with lifecycle events, by the job's taking.

        The store is read at the start, every TAKEN_POLL_SECONDS and at the end: an event
        consumed by any dispatcher of the machine ends the wait of the one holding the job.
        """
        if self._taken is None:
            return Pause.STOPPING if self._stop.wait(seconds) else Pause.ELAPSED
        deadline = time.monotonic() + seconds
        while not self._seen_taken(job):
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # as `Event.wait`, which says whether the flag is set at the end
                return Pause.STOPPING if self._stop.is_set() else Pause.ELAPSED
            if self._stop.wait(min(remaining, TAKEN_POLL_SECONDS)):
                return Pause.TAKEN if self._seen_taken(job) else Pause.STOPPING
        return Pause.TAKEN

    def _seen_taken(self, job: QueuedJob) -> bool:
        """Whether a lifecycle event said a runner took this job attempt (logged when so).

        Only an event of the same job id and run attempt counts; a message without a run
        attempt (an older router's) is left to GitHub. A store that cannot be read knows
        nothing: GitHub is asked, as without events.
        """
        if self._taken is None or job.run_attempt is None:
            return False
        try:
            action = self._taken.taken(job.job_id, job.run_attempt)
        except TakenStoreError as exc:
            self._metrics.taken_store_errors.labels("read").inc()
            logger.warning("job %s: %s; asking GitHub instead", job.url, exc)
            return False
        if action is None:
            return False
        logger.info(
            "job %s: taken by a runner (%s event, run attempt %d): acknowledged, no spawn",
            job.url,
            action,
            job.run_attempt,
        )
        return True

    def attempt(self, job: QueuedJob, flavour: str, attempt: int) -> Decision:
        """Run one attempt at `job`, taken from `flavour`'s queue; `attempt` counts from 1."""
        if self._seen_taken(job):
            return Decision(Outcome.ACK, TAKEN_EVENT)
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
        if self._seen_taken(job):  # while GitHub was asked: the runner is not needed
            self._forget_runner(job, request)
            return Decision(Outcome.ACK, TAKEN_EVENT)
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
        short: the job is handed back (HAND_BACK) for the next dispatcher to watch. A lifecycle
        event saying the job was taken ends it without asking GitHub.
        """
        for _ in range(self._settings.pickup_polls):
            paused = self.pause(job, self._settings.pickup_interval_seconds)
            if paused is Pause.TAKEN:
                return Decision(Outcome.ACK, TAKEN_EVENT)
            stopping = paused is Pause.STOPPING
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
        """Delete the JIT runner registered for a spawn that failed or was not needed.

        Else it lingers offline. Best effort: a runner left registered is harmless to the job
        (it never comes online) and GitHub removes offline JIT runners by itself after a day.
        """
        if request.runner_id is None:
            return
        try:
            self._jobs.delete_runner(job, request.runner_id)
        except (JobNotFoundError, GitHubUnavailableError) as exc:
            logger.warning(
                "job %s: JIT runner %s left registered: %s", job.url, request.runner_name, exc
            )
