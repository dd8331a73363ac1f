"""Prometheus metrics of one dispatcher, in its own registry (served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Spawns of a local program take milliseconds; a cloud VM's API call takes seconds to minutes.
SPAWN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# From the job's creation to its runner's spawn: from near-instant to the 30-minute backoff.
QUEUE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """Counters by flavour and bounded reason, histograms of spawn timings."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.consumed = Counter(
            "dispatcher_messages_consumed",
            "Messages received from a flavour's queue.",
            ["flavour"],
            registry=self.registry,
        )
        self.spawned = Counter(
            "dispatcher_runners_spawned",
            "Runners the spawner reported started.",
            ["flavour"],
            registry=self.registry,
        )
        self.acked = Counter(
            "dispatcher_messages_acked",
            "Messages acknowledged (done with), by reason.",
            ["flavour", "reason"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "dispatcher_messages_rejected",
            "Messages rejected for good, by reason.",
            ["flavour", "reason"],
            registry=self.registry,
        )
        self.requeued = Counter(
            "dispatcher_messages_requeued",
            "Messages put back for a later attempt, by reason.",
            ["flavour", "reason"],
            registry=self.registry,
        )
        self.broker_errors = Counter(
            "dispatcher_broker_errors",
            "Broker connections lost or refused (the consumer reconnects).",
            registry=self.registry,
        )
        self.spawn_seconds = Histogram(
            "dispatcher_spawn_seconds",
            "Time the spawner took to start a runner (successful spawns).",
            ["flavour"],
            buckets=SPAWN_BUCKETS,
            registry=self.registry,
        )
        self.created_to_spawn_seconds = Histogram(
            "dispatcher_job_created_to_spawn_seconds",
            "Time from the job's created_at (as GitHub reports it) to its runner's spawn.",
            ["flavour"],
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        # Lifecycle events (DISPATCHER_LIFECYCLE_EVENTS): counted apart from job messages.
        self.events_consumed = Counter(
            "dispatcher_events_consumed",
            "Lifecycle events received from a flavour's events queue.",
            ["flavour"],
            registry=self.registry,
        )
        self.events_acked = Counter(
            "dispatcher_events_acked",
            "Lifecycle events acknowledged (taken jobs recorded), by action.",
            ["flavour", "action"],
            registry=self.registry,
        )
        self.events_rejected = Counter(
            "dispatcher_events_rejected",
            "Lifecycle events rejected for good, by reason.",
            ["flavour", "reason"],
            registry=self.registry,
        )
        self.events_requeued = Counter(
            "dispatcher_events_requeued",
            "Lifecycle events put back because the taken-jobs store could not be written.",
            ["flavour"],
            registry=self.registry,
        )
        self.taken_store_errors = Counter(
            "dispatcher_taken_store_errors",
            "Reads or writes of the taken-jobs store that failed, by operation.",
            ["operation"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "dispatcher_jobs_in_flight",
            "Messages a consumer holds right now (waiting, spawning or polling).",
            registry=self.registry,
        )
