"""The one service function behind POST /webhook: route, deduplicate, publish."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from webhook_router.dedup import (
    Claim,
    DedupStore,
    DedupStoreError,
    NullDedupStore,
    RedisDedupStore,
    SqliteDedupStore,
)
from webhook_router.errors import BrokerUnavailableError, DeliveryInProgressError
from webhook_router.message import encode_body
from webhook_router.metrics import Metrics
from webhook_router.payload import Job
from webhook_router.publisher import Publisher
from webhook_router.settings import Settings

logger = logging.getLogger(__name__)

QUEUED = "queued"
REDIS_SCHEMES = frozenset({"redis", "rediss"})


@dataclass(frozen=True)
class Outcome:
    """What happened to a delivery that was answered 200.

    Attributes:
        kind: published, duplicate, ignored or unmatched (also the metric's outcome label).
        message: the short text answered to GitHub.
        flavour: the flavour a job was (or had been) published to.
    """

    kind: str
    message: str
    flavour: str = ""


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
        """Publish a queued job to its flavour's queue, at most once per delivery id.

        Args:
            job: the parsed job.
            delivery_id: the X-GitHub-Delivery header; redeliveries keep it.

        Returns:
            What happened.

        Raises:
            DeliveryInProgressError: the same delivery is being published right now.
            BrokerUnavailableError: the broker did not store the job in time.
        """
        if job.action != QUEUED:
            return Outcome("ignored", f"Ignored: only queued jobs are routed, not {job.action}")
        flavour = self.settings.routing.route(job.labels)
        if flavour is None:
            logger.warning("no flavour serves labels %s of job %s", list(job.labels), job.url)
            return Outcome("unmatched", "No flavour serves the job's labels; job not queued")
        claim = self._claim(delivery_id)
        if claim is Claim.DONE:
            return Outcome("duplicate", "Duplicate delivery: job already queued", flavour)
        if claim is Claim.IN_PROGRESS:
            raise DeliveryInProgressError()
        claimed = claim is Claim.NEW
        started = time.perf_counter()
        try:
            self.publisher.publish(flavour, encode_body(job))
        except BaseException as exc:
            if isinstance(exc, BrokerUnavailableError):
                self.metrics.broker_errors.labels(operation="publish").inc()
            if claimed:  # whatever went wrong, let GitHub's redelivery through
                self._settle(delivery_id, published=False)
            raise
        finally:
            self.metrics.publish_seconds.observe(time.perf_counter() - started)
        if claimed:
            self._settle(delivery_id, published=True)
        return Outcome("published", f"Job queued for flavour {flavour}", flavour)

    def _claim(self, delivery_id: str | None) -> Claim | None:
        """Reserve the delivery id; None when there is nothing to settle afterwards."""
        if delivery_id is None or self.settings.dedup_window_seconds == 0:
            return None
        try:
            return self.dedup.claim(delivery_id)
        except DedupStoreError:
            # Publishing without dedup risks a duplicate runner; refusing would lose the job.
            self.metrics.dedup_errors.inc()
            logger.warning("dedup store unavailable; publishing without duplicate check")
            return None

    def _settle(self, delivery_id: str | None, *, published: bool) -> None:
        assert delivery_id is not None  # noqa: S101 - only called for claimed ids
        try:
            if published:
                self.dedup.confirm(delivery_id)
            else:
                self.dedup.release(delivery_id)
        except DedupStoreError:
            self.metrics.dedup_errors.inc()
            logger.warning("dedup store unavailable; delivery %s not settled", delivery_id)

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
