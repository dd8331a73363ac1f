"""Prometheus metrics of the service, summed over every gunicorn worker (see docs/metrics.md).

Each gunicorn worker is its own process. When the web server starts (``wsgi.py`` calls
:func:`serve_metrics`) prometheus_client's multiprocess mode is switched on: every worker writes
its values to files in a folder private to this gunicorn server (under ``DJANGO_DATA_DIR``), and
whichever worker holds ``DJANGO_METRICS_PORT`` serves the sum of all files; the others keep
trying to bind, so when the serving worker dies another takes over within seconds. The
published-records figures are read from the database at scrape time. Other processes
(management commands, tests) keep their metrics in memory.

No label carries a user, a name or any other value a client chooses: every label has a fixed,
small set of values.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import DatabaseError, connections
from django.db.models import Count, Min
from django.utils import timezone
from dns_backends import (
    DeadlineExceededError,
    DnsBackendError,
    DnsBackendUnavailableError,
    InvalidRecordError,
    ZoneNotFoundError,
    events,
)
from pids import alive
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from api.operations import OperationsSettings, operations

logger = logging.getLogger(__name__)

BIND_RETRY_SECONDS = 5.0
# From an in-process write (milliseconds) to a push over SSH at the deadline (tens of seconds).
BACKEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Failure reasons, most specific class first (bounded: one value per class of failure).
FAILURE_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (DeadlineExceededError, "deadline"),
    (ZoneNotFoundError, "zone_not_found"),
    (InvalidRecordError, "invalid_record"),
    (DnsBackendUnavailableError, "unavailable"),
    (DnsBackendError, "backend_error"),
)


def failure_reason(exc: BaseException) -> str:
    """The ``reason`` label of a failed change: a class of failure, never a message."""
    return next((reason for kind, reason in FAILURE_REASONS if isinstance(exc, kind)), "internal")


class Metrics:
    """The service's counters and histograms.

    Attributes:
        changes: record changes by operation (present, cleanup), path (via), backend, outcome
            (ok, refused, failed) and reason (for refused and failed ones).
        backend_seconds: time the backend took to apply a change, by operation and backend.
        push_conflicts: pushes the remote refused because another writer moved the branch.
        push_retries: changes re-applied on the new tip and pushed again after a conflict.
        authentication_failures: password logins refused (wrong credentials) or throttled.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.changes = Counter(
            "lego_provider_record_changes",
            "Record changes (present, cleanup) by path, backend and outcome",
            ["operation", "via", "backend", "outcome", "reason"],
            registry=registry,
        )
        self.backend_seconds = Histogram(
            "lego_provider_backend_seconds",
            "Time the DNS backend took to apply a change, successful or not",
            ["operation", "backend"],
            buckets=BACKEND_BUCKETS,
            registry=registry,
        )
        self.push_conflicts = Counter(
            "lego_provider_push_conflicts",
            "Pushes refused because another writer changed the branch first",
            ["backend"],
            registry=registry,
        )
        self.push_retries = Counter(
            "lego_provider_push_retries",
            "Changes re-applied on the remote's new tip and pushed again",
            ["backend"],
            registry=registry,
        )
        self.authentication_failures = Counter(
            "lego_provider_authentication_failures",
            "Password logins refused (wrong credentials) or throttled (locked out)",
            ["outcome"],
            registry=registry,
        )

    def count_change(self, operation: str, via: str, outcome: str, reason: str = "") -> None:
        """Count one record change of this service's backend."""
        self.changes.labels(
            operation=operation,
            via=via if via in KNOWN_VIAS else "other",
            backend=backend_name(),
            outcome=outcome,
            reason=reason,
        ).inc()


# The paths a change arrives by (api.audit.current_via); anything else is counted as "other".
KNOWN_VIAS = frozenset(
    {"httpreq", "acme-dns", "janitor", "admin", "admin-api", "http", "command", "system"}
)

_lock = threading.Lock()
_metrics: Metrics | None = None


def backend_name() -> str:
    """The configured backend's name (a label value; the names are a fixed set)."""
    return str(settings.DNS_BACKEND)


def metrics() -> Metrics:
    """This process's metrics, created on first use (after :func:`serve_metrics` if any)."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics(CollectorRegistry())
    return _metrics


def serve_metrics(config: OperationsSettings | None = None) -> None:
    """In a web server's worker: share the metrics between workers and serve them.

    Call before any metric is used (prometheus_client picks where values live when a metric
    is created). A port of 0 leaves the metrics in this process.
    """
    config = config or operations()
    if not config.metrics_port:
        return
    if _metrics is not None:
        logger.warning("metrics were used before serve_metrics(); this worker's are not shared")
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(configured) if configured else _multiprocess_directory(settings.DATA_DIR)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    served = CollectorRegistry()
    multiprocess.MultiProcessCollector(served, path=str(directory))  # type: ignore[no-untyped-call]
    served.register(PublishedRecordsCollector(own_connections=True))
    threading.Thread(
        target=_serve,
        args=(served, config.metrics_port, config.metrics_address),
        name="metrics-server",
        daemon=True,
    ).start()


def _multiprocess_directory(data_dir: Path) -> Path:
    """A folder per gunicorn server (the workers' parent); those of dead servers are removed."""
    root = data_dir / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    server = os.getppid()
    for folder in root.iterdir():
        if folder.name.isdigit() and int(folder.name) != server and not alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
    directory = root / str(server)
    directory.mkdir(exist_ok=True)
    return directory


def _serve(registry: CollectorRegistry, port: int, address: str) -> None:
    """Bind the metrics port, or keep retrying while another worker holds it."""
    stop = threading.Event()
    while not stop.is_set():
        try:
            start_http_server(port, addr=address, registry=registry)
        except OSError:
            stop.wait(BIND_RETRY_SECONDS)
            continue
        logger.info("serving metrics on %s:%d (pid %d)", address, port, os.getpid())
        return


class PublishedRecordsCollector(Collector):
    """Records published now, and the age of the oldest, read from the database per scrape.

    The figures are the deployment's (every unit reports the same): aggregate them with
    ``max``, not ``sum``.
    """

    def __init__(self, *, own_connections: bool = False) -> None:
        # The metrics server scrapes in a thread per request: its connections must not outlive
        # the scrape (own_connections=True closes them after each one).
        self._own_connections = own_connections

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One aggregate query; nothing is reported when the database cannot be read."""
        from api.models import PublishedRecord  # the app registry is ready by the first scrape

        try:
            rows = (
                PublishedRecord.objects.filter(confirmed=True)
                .values("via")
                .annotate(count=Count("id"), oldest=Min("presented_at"))
            )
            figures = [(row["via"], row["count"], row["oldest"]) for row in rows]
        except DatabaseError:
            logger.exception("cannot read the published records for the metrics")
            return
        finally:
            if self._own_connections:
                connections.close_all()
        now = timezone.now()
        published = GaugeMetricFamily(
            "lego_provider_records_published",
            "TXT values published and not withdrawn, by the path that published them",
            labels=["via"],
        )
        oldest = GaugeMetricFamily(
            "lego_provider_records_oldest_age_seconds",
            "Age of the oldest published TXT value, by the path that published it",
            labels=["via"],
        )
        by_via: dict[str, tuple[int, datetime]] = {}
        for via, count, first in figures:
            label = via if via in KNOWN_VIAS else "other"
            seen, earliest = by_via.get(label, (0, first))
            by_via[label] = (seen + count, min(earliest, first))
        for label, (count, first) in sorted(by_via.items()):
            published.add_metric([label], count)
            oldest.add_metric([label], max(0.0, (now - first).total_seconds()))
        yield published
        yield oldest


def _on_backend_event(backend: str, event: events.Event) -> None:
    counter = metrics().push_conflicts if event == events.PUSH_CONFLICT else metrics().push_retries
    counter.labels(backend=backend).inc()


def _on_login_failed(**_: object) -> None:
    count_authentication_failure("refused")


def count_authentication_failure(outcome: str) -> None:
    """Count a refused (``refused``) or locked-out (``throttled``) password login."""
    metrics().authentication_failures.labels(outcome=outcome).inc()


@functools.cache
def connect() -> None:
    """Listen to the backends' events and Django's failed logins (once per process)."""
    events.subscribe(_on_backend_event)
    user_login_failed.connect(_on_login_failed, dispatch_uid="api.metrics.login_failed")
