"""The dispatcher process: consumer threads, the health and metrics server, a clean stop."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from webhook_router.github_api import TokenSource

from runner_dispatcher.consumer import BrokerThread, QueueConsumer, forgets_delivered_messages
from runner_dispatcher.events import EventsConsumer
from runner_dispatcher.held import HeldJournal
from runner_dispatcher.job_handler import JobHandler
from runner_dispatcher.jobs_api import Jobs, JobsApi, OfflineJobs
from runner_dispatcher.metrics import Metrics
from runner_dispatcher.settings import Settings
from runner_dispatcher.spawner import CommandSpawner, Spawner, spawner_environment
from runner_dispatcher.taken import FILE_NAME as TAKEN_FILE_NAME
from runner_dispatcher.taken import TakenStore

logger = logging.getLogger(__name__)


class Dispatcher:
    """Everything one dispatcher process runs; `stop()` ends it, finishing or releasing jobs.

    Args:
        settings: the validated configuration.
        spawner: the spawner to use; by default the command spawner of the settings.
        environ: the environment the command spawner's pass-through variables come from.

    Raises:
        TakenStoreError: lifecycle events are on and the taken-jobs store cannot be opened.
        OSError: the health port cannot be listened on.
    """

    def __init__(
        self,
        settings: Settings,
        spawner: Spawner | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.stopping = threading.Event()
        self._spawner = spawner or CommandSpawner(
            settings.spawn_command,
            settings.spawn_timeout_seconds,
            spawner_environment(settings.spawn_pass_env, environ),
        )
        tokens = None if settings.auth is None else TokenSource(settings.api_url, settings.auth)
        self._sessions: list[requests.Session] = []
        # Lifecycle events: one consumer of the events queues, and the store it writes, which
        # every dispatcher process of the machine reads (the state folder is theirs).
        self._taken = taken = (
            TakenStore(settings.state_dir / TAKEN_FILE_NAME) if settings.lifecycle_events else None
        )
        self._journal = journal = (
            HeldJournal(settings.state_dir / "dispatcher-held")
            if forgets_delivered_messages(settings)
            else None
        )
        self.events_consumer = (
            None
            if taken is None
            else EventsConsumer("events", settings, taken, self.metrics, self.stopping)
        )
        self.consumers = [
            QueueConsumer(
                f"consumer-{index}",
                settings,
                JobHandler(
                    settings,
                    self._jobs_api(tokens),
                    self._spawner,
                    self.metrics,
                    self.stopping,
                    taken,
                ),
                self.metrics,
                self.stopping,
                journal,
            )
            for index in range(settings.consumers)
        ]
        self._health = _HealthServer(self)

    def _jobs_api(self, tokens: TokenSource | None) -> Jobs:
        if self.settings.offline_demo:
            return OfflineJobs()
        session = requests.Session()
        self._sessions.append(session)
        return JobsApi(
            self.settings.api_url,
            tokens,
            session,
            self.settings.github_timeout_seconds,
            organisation_scope=self.settings.jit_scope == "organisation",
            runner_group_id=self.settings.runner_group_id,
        )

    @property
    def health_port(self) -> int:
        """The port /health and /metrics are served on (the chosen one when configured 0)."""
        port: int = self._health.server_address[1]
        return port

    def threads(self) -> list[BrokerThread]:
        """Every thread with a broker connection: the job consumers and the events consumer."""
        threads: list[BrokerThread] = list(self.consumers)
        if self.events_consumer is not None:
            threads.append(self.events_consumer)
        return threads

    def healthy(self) -> bool:
        """Every consumer (and the events consumer) is connected to the broker and consuming."""
        return all(thread.connected.is_set() for thread in self.threads())

    def start(self) -> None:
        """Start the health server and the consumers."""
        if self.settings.offline_demo:
            logger.warning(
                "DISPATCHER_OFFLINE_DEMO: GitHub is never asked about jobs; not for production"
            )
        threading.Thread(target=self._health.serve_forever, name="health", daemon=True).start()
        for thread in self.threads():
            thread.start()
        logger.info(
            "dispatcher consuming %s with %d consumers%s; health on %s:%d",
            ",".join(self.settings.flavours),
            len(self.consumers),
            "" if self.events_consumer is None else ", and their lifecycle events",
            self.settings.health_address,
            self.health_port,
        )

    def stop(self) -> None:
        """Ask every consumer to stop after (or instead of) its current step."""
        self.stopping.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the consumers to end, then close the server; True when all ended."""
        for thread in self.threads():
            thread.join(timeout)
        ended = not any(thread.is_alive() for thread in self.threads())
        if ended:
            self._health.shutdown()
            self._health.server_close()
            for session in self._sessions:
                session.close()
            if self._journal is not None:
                self._journal.close()
            if self._taken is not None:
                self._taken.close()
        return ended


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        settings = dispatcher.settings
        super().__init__((settings.health_address, settings.health_port), _HealthHandler)


class _HealthHandler(BaseHTTPRequestHandler):
    server: _HealthServer

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not worth a log line each."""

    def do_GET(self) -> None:
        dispatcher = self.server.dispatcher
        if self.path == "/metrics":
            self._answer(200, generate_latest(dispatcher.metrics.registry), CONTENT_TYPE_LATEST)
        elif self.path == "/health":
            connected = sum(consumer.connected.is_set() for consumer in dispatcher.consumers)
            body: dict[str, object] = {
                "consumers": len(dispatcher.consumers),
                "connected": connected,
            }
            if dispatcher.events_consumer is not None:
                body["events_connected"] = dispatcher.events_consumer.connected.is_set()
            healthy = dispatcher.healthy() and not dispatcher.stopping.is_set()
            self._answer(200 if healthy else 503, json.dumps(body).encode(), "application/json")
        else:
            self._answer(404, b'{"error": "not found"}', "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
