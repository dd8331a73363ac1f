"""Prometheus metrics, summed over every gunicorn worker of this server.

Each worker is its own process, so in-memory counters would show one worker at a time. With a
metrics port configured, prometheus_client's multiprocess mode is switched on: every worker
writes its values to files in a folder private to this gunicorn server, and whichever worker
holds the metrics port serves the sum of all files. The others keep trying to bind, so when the
serving worker dies another takes over within seconds.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, values
from prometheus_client.exposition import start_http_server

logger = logging.getLogger(__name__)

BIND_RETRY_SECONDS = 5.0
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# From seconds (a warm pool) to hours (a queue that nobody serves).
_WAIT_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600)
_RUN_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600, 43200, 86400)


class Metrics:
    """The router's counters and histograms in one registry.

    Attributes:
        registry: where the metrics live (per process; the served view is aggregated).
        webhooks: webhooks by outcome (published, duplicate, event_published,
            event_duplicate, ignored, unmatched, ping, rejected, failed), with the flavour
            where one was chosen and the reason for unmatched, rejected and failed ones.
        routed: queued jobs a flavour was chosen for, by flavour.
        job_wait_seconds: created_at to started_at of routed jobs (from in_progress events).
        job_run_seconds: started_at to completed_at of routed jobs that ran (completed events).
        signature_matches: signed webhooks by the position of the secret that matched.
        publish_seconds: time to store a job in the broker, successful or not.
        broker_errors: failed broker attempts by operation (publish, health).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.webhooks = Counter(
            "webhook_router_webhooks",
            "Webhooks received, by outcome",
            ["outcome", "flavour", "reason"],
            registry=registry,
        )
        self.routed = Counter(
            "webhook_router_jobs_routed",
            "Queued jobs a flavour was chosen for",
            ["flavour"],
            registry=registry,
        )
        self.job_wait_seconds = Histogram(
            "webhook_router_job_wait_seconds",
            "Time from a job's creation to its start (waiting for a runner), by flavour",
            ["flavour"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.job_run_seconds = Histogram(
            "webhook_router_job_run_seconds",
            "Time from a job's start to its completion, by flavour",
            ["flavour"],
            buckets=_RUN_BUCKETS,
            registry=registry,
        )
        self.signature_matches = Counter(
            "webhook_router_signature_matches",
            "Signed webhooks by the position (0 = first) of the secret that matched",
            ["position"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "webhook_router_publish_seconds",
            "Time to store a job in the broker",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.broker_errors = Counter(
            "webhook_router_broker_errors",
            "Broker operations that failed",
            ["operation"],
            registry=registry,
        )
        self.dedup_errors = Counter(
            "webhook_router_dedup_errors",
            "Dedup store calls that failed (the job was published anyway)",
            registry=registry,
        )

    def count(self, outcome: str, flavour: str = "", reason: str = "") -> None:
        """Count one webhook."""
        self.webhooks.labels(outcome=outcome, flavour=flavour, reason=reason).inc()


def create_metrics(state_dir: Path, port: int, address: str) -> Metrics:
    """Create the metrics, and when a port is given, share them between workers and serve them.

    Args:
        state_dir: parent of the multiprocess files folder.
        port: metrics port; 0 keeps metrics in this process only.
        address: address to bind the metrics server to.

    Returns:
        The metrics.
    """
    if port:
        configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        directory = Path(configured) if configured else _multiprocess_directory(state_dir)
        _enable_multiprocess(directory)
        served = CollectorRegistry()
        multiprocess.MultiProcessCollector(served, path=str(directory))
        threading.Thread(
            target=_serve, args=(served, port, address), name="metrics-server", daemon=True
        ).start()
    return Metrics(CollectorRegistry())


def _multiprocess_directory(state_dir: Path) -> Path:
    """A folder per gunicorn server: workers share their parent (the master), so its pid.

    Folders of servers that no longer run are removed so old counts do not linger.
    """
    root = state_dir / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    server = os.getppid()
    for folder in root.iterdir():
        if folder.name.isdigit() and int(folder.name) != server and not _alive(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
    directory = root / str(server)
    directory.mkdir(exist_ok=True)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _enable_multiprocess(directory: Path) -> None:
    """Make prometheus_client keep values in files in `directory`.

    prometheus_client picks its value class once, at import, from PROMETHEUS_MULTIPROC_DIR;
    the service reads its configuration later, so it sets both here, before any metric exists.
    An operator's own PROMETHEUS_MULTIPROC_DIR is used as is.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()


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
