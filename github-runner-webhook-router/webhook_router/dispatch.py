"""The one service function behind POST /webhook: route, deduplicate, publish."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from webhook_router.decision_log import log_decision
from webhook_router.dedup import (
    Claim,
    DedupStore,
    DedupStoreError,
    NullDedupStore,
    RedisDedupStore,
    SqliteDedupStore,
)
from webhook_router.errors import (
    BrokerUnavailableError,
    DeliveryInProgressError,
    RepositoryNotAllowedError,
    RouterError,
)
from webhook_router.message import (
    LIFECYCLE_ACTIONS,
    encode_body,
    event_text,
    events_queue,
    job_text,
)
from webhook_router.metrics import Metrics
from webhook_router.payload import Job
from webhook_router.publisher import Publisher
from webhook_router.routing import Decision
from webhook_router.settings import Settings

logger = logging.getLogger(__name__)

QUEUED = "queued"
REDIS_SCHEMES = frozenset({"redis", "rediss"})
# A copy of a job being published elsewhere polls the store this often (doubling) meanwhile.
FIRST_POLL_SECONDS = 0.005
MAX_POLL_SECONDS = 0.05


def job_key(job: Job) -> str:
    """The dedup key of a queued job: its identity from the signed body."""
    return f"job:{job.identity}"


def event_key(job: Job) -> str:
    """The dedup key of a lifecycle event: one per action of a job attempt."""
    return f"event:{job.action}:{job.identity}"


@dataclass(frozen=True)
class Outcome:
    """What happened to a delivery that was answered 200.

    Attributes:
        kind: published, duplicate, event_published, event_duplicate, ignored or unmatched
            (also the metric's outcome label).
        message: the short text answered to GitHub; never repeats request input.
        flavour: the flavour a job was (or had been) published to.
        reason: why no flavour matched, for unmatched jobs.
    """

    kind: str
    message: str
    flavour: str = ""
    reason: str = ""


class Dispatcher:
    """Routes jobs and publishes them, holding this process's broker and dedup clients.

    The clients are created on first use in the process that uses them: gunicorn imports the
    app (possibly in its master) and forks workers, and sockets must not be shared over a fork.
    """

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._pid = 0
        self._publisher: Publisher | None = None
        self._dedup: DedupStore = NullDedupStore()
        self._lock = threading.Lock()

    @property
    def publisher(self) -> Publisher:
        """This process's publisher (created after fork)."""
        self._ensure_process()
        assert self._publisher is not None  # noqa: S101 - set by _ensure_process
        return self._publisher

    @property
    def dedup(self) -> DedupStore:
        """This process's dedup store (created after fork)."""
        self._ensure_process()
        return self._dedup

    def _ensure_process(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:  # threaded workers: the first requests may arrive together
            if self._pid != os.getpid():
                self._create_clients()

    def _create_clients(self) -> None:
        settings = self.settings
        self._publisher = Publisher(
            settings.broker_url, settings.state_dir, settings.publish_timeout_seconds
        )
        self._dedup = create_dedup_store(settings)
        self._pid = os.getpid()

    def dispatch(self, job: Job, delivery_id: str | None) -> Outcome:
        """Publish a queued job to its flavour's queue, at most once per job attempt.

        Other actions of routed jobs feed the wait and run time metrics and, when enabled, go
        to the flavour's lifecycle events queue. Every decision is logged as one JSON line.

        Args:
            job: the parsed job.
            delivery_id: the X-GitHub-Delivery header, for the log only: it is not signed.

        Returns:
            What happened.

        Raises:
            RepositoryNotAllowedError: the repository is not in the allow-list.
            DeliveryInProgressError: another request held this job for the whole budget.
            BrokerUnavailableError: the broker did not store the job in time.
        """
        decision = self.settings.routing.decide(job.labels)
        try:
            if not self.settings.allows_repository(job.repository):
                raise RepositoryNotAllowedError()
            outcome = self._route(job, decision)
        except RouterError as error:
            log_decision(
                job,
                delivery_id,
                decision,
                "failed" if error.status >= 500 else "refused",
                error.reason,
            )
            raise
        log_decision(job, delivery_id, decision, outcome.kind, outcome.reason)
        return outcome

    def _route(self, job: Job, decision: Decision) -> Outcome:
        flavour = decision.flavour
        if job.action != QUEUED:
            return self._lifecycle(job, flavour)
        if flavour is None:
            reason = decision.reason or ""
            return Outcome(
                "unmatched", "No flavour serves the job's labels; job not queued", reason=reason
            )
        self.metrics.routed.labels(flavour=flavour).inc()
        text = job_text(job, flavour, decision.labels)
        if not self._publish_once(job_key(job), flavour, encode_body(text)):
            return Outcome("duplicate", "Duplicate delivery: job already queued", flavour)
        return Outcome("published", f"Job queued for flavour {flavour}", flavour)

    def _lifecycle(self, job: Job, flavour: str | None) -> Outcome:
        """Observe a routed job's wait or run time; publish the event when enabled."""
        ignored = Outcome("ignored", "Ignored: only queued jobs are routed", flavour or "")
        if flavour is None:
            return ignored
        if self.settings.lifecycle_events and job.action in LIFECYCLE_ACTIONS:
            body = encode_body(event_text(job, flavour))
            if not self._publish_once(event_key(job), events_queue(flavour), body):
                return Outcome(
                    "event_duplicate", "Duplicate delivery: event already queued", flavour
                )
            self._observe(job, flavour)
            return Outcome("event_published", f"Event queued for flavour {flavour}", flavour)
        self._observe(job, flavour)
        return ignored

    def _observe(self, job: Job, flavour: str) -> None:
        if job.action == "in_progress":
            waited = _seconds_between(job.time("created_at"), job.time("started_at"))
            if waited is not None:
                self.metrics.job_wait_seconds.labels(flavour=flavour).observe(waited)
        elif job.action == "completed" and job.runner_name is not None:
            ran = _seconds_between(job.time("started_at"), job.time("completed_at"))
            if ran is not None:
                self.metrics.job_run_seconds.labels(flavour=flavour).observe(ran)

    def _publish_once(self, key: str, queue: str, body: bytes) -> bool:
        """Publish `body` unless `key` was published; False for a duplicate.

        A copy arriving while another request publishes the same key waits for that outcome
        within the publish budget: the other published (a duplicate, so 200), or it failed and
        released the key, and this one publishes with what is left of the budget.

        Raises:
            DeliveryInProgressError: the other request neither published nor failed in time.
            BrokerUnavailableError: the broker did not store the message in time.
        """
        deadline = self.publisher.deadline()
        claim = self._claim(key)
        pause = FIRST_POLL_SECONDS
        while claim is Claim.IN_PROGRESS:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeliveryInProgressError()
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, MAX_POLL_SECONDS)
            claim = self._claim(key)
        if claim is Claim.DONE:
            return False
        claimed = claim is Claim.NEW
        started = time.perf_counter()
        try:
            self.publisher.publish(queue, body, deadline)
        except BaseException as exc:
            if isinstance(exc, BrokerUnavailableError):
                self.metrics.broker_errors.labels(operation="publish").inc()
            if claimed:  # whatever went wrong, let a copy or a redelivery through
                self._settle(key, published=False)
            raise
        finally:
            self.metrics.publish_seconds.observe(time.perf_counter() - started)
        if claimed:
            self._settle(key, published=True)
        return True

    def _claim(self, key: str) -> Claim | None:
        """Reserve the key; None when there is nothing to settle afterwards."""
        if self.settings.dedup_window_seconds == 0:
            return None
        try:
            return self.dedup.claim(key)
        except DedupStoreError:
            # Publishing without dedup risks a duplicate runner; refusing would lose the job.
            self.metrics.dedup_errors.inc()
            logger.warning("dedup store unavailable; publishing without duplicate check")
            return None

    def _settle(self, key: str, *, published: bool) -> None:
        try:
            if published:
                self.dedup.confirm(key)
            else:
                self.dedup.release(key)
        except DedupStoreError:
            self.metrics.dedup_errors.inc()
            logger.warning("dedup store unavailable; %s not settled", key)

    def check_broker(self) -> None:
        """Probe the broker with one bounded round trip.

        Raises:
            BrokerUnavailableError: the broker did not answer in time.
        """
        try:
            self.publisher.check(self.settings.routing.default_flavour)
        except BrokerUnavailableError as exc:
            self.metrics.broker_errors.labels(operation="health").inc()
            raise BrokerUnavailableError("Message broker unavailable") from exc

    def close(self) -> None:
        """Drop this process's connections (at shutdown and between tests)."""
        if self._pid == os.getpid():
            if self._publisher is not None:
                self._publisher.close()
            self._dedup.close()


def create_dedup_store(settings: Settings) -> DedupStore:
    """Pick the dedup store every worker can see.

    Redis when one is configured or is the broker (shared by all units too); otherwise a SQLite
    file in the state directory (shared by the workers of this machine).
    """
    if settings.dedup_window_seconds == 0:
        return NullDedupStore()
    url = settings.dedup_url
    broker = settings.broker_url
    if url is None and broker is not None and broker.split("://", 1)[0].lower() in REDIS_SCHEMES:
        url = broker
    if url is not None:
        return RedisDedupStore(url, settings.dedup_window_seconds)
    return SqliteDedupStore(
        Path(settings.state_dir) / "dedup.sqlite3", settings.dedup_window_seconds
    )


def _seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one ISO 8601 timestamp to another; None if either is missing or bad."""
    if start is None or end is None:
        return None
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (ValueError, TypeError):  # TypeError: one has a time zone, the other not
        return None
    return seconds if seconds >= 0 else None
