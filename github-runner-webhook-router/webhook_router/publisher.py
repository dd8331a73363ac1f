"""Publish jobs through a per-process pool of long-lived broker connections."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from pathlib import Path

from kombu.connection import Connection
from kombu.exceptions import KombuError
from kombu.messaging import Producer

from webhook_router import broker
from webhook_router.errors import BrokerUnavailableError
from webhook_router.message import CONTENT_ENCODING, CONTENT_TYPE

logger = logging.getLogger(__name__)

ATTEMPTS = 2


class _Channel:
    """One connection with its producer; used by one thread at a time."""

    def __init__(self, url: str | None, state_dir: Path, timeout: float) -> None:
        self._url = url
        self._state_dir = state_dir
        self._timeout = timeout
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._declared: set[str] = set()
        self.errors: tuple[type[BaseException], ...] = ()

    def _ready_producer(self) -> Producer:
        if self._producer is None:
            conn = broker.connection(self._url, self._state_dir, self._timeout)
            self._connection = conn
            self.errors = (*conn.connection_errors, *conn.channel_errors)
            # No retry here: one bounded try per attempt keeps the webhook's answer in time.
            conn.ensure_connection(max_retries=0)
            self._producer = Producer(conn.channel())
        return self._producer

    def declare(self, flavour: str) -> None:
        """Declare the flavour's queue once per connection, as a SimpleQueue consumer would."""
        producer = self._ready_producer()
        if flavour not in self._declared:
            broker.flavour_queue(flavour)(producer.channel).declare()
            self._declared.add(flavour)

    def probe(self, flavour: str) -> None:
        """Declare the flavour's queue even if declared before: one round trip to the broker."""
        producer = self._ready_producer()
        broker.flavour_queue(flavour)(producer.channel).declare()
        self._declared.add(flavour)

    def publish(self, flavour: str, body: bytes) -> None:
        """Store one message; returns once the broker has it (confirmed on RabbitMQ)."""
        self.declare(flavour)
        producer = self._ready_producer()
        # The default exchange delivers straight to the queue named by the routing key, on
        # RabbitMQ as on kombu's virtual transports, where it also skips a binding lookup (one
        # Redis round trip per publish). Consumers read the same queue either way.
        # mandatory: if the queue vanished (deleted by an operator), RabbitMQ returns the message
        # instead of confirming a drop; the retry on a fresh connection declares it again.
        producer.publish(
            body,
            exchange="",
            routing_key=flavour,
            mandatory=True,
            content_type=CONTENT_TYPE,
            content_encoding=CONTENT_ENCODING,
            delivery_mode=2,
            timeout=self._timeout,
            confirm_timeout=self._timeout,
        )

    def reset(self) -> None:
        """Drop the connection after a failure; the next use reconnects."""
        connection, self._connection, self._producer = self._connection, None, None
        self._declared.clear()
        if connection is not None:
            try:
                connection.collect()  # release sockets without talking to a broken broker
            except Exception:
                logger.debug("ignoring error while dropping a broken connection", exc_info=True)


class Publisher:
    """Thread-safe publisher reusing connections across requests.

    Each thread borrows a connection from a stack, so a sync worker keeps exactly one and a
    threaded worker one per busy thread; nothing is opened per webhook. A failed attempt drops
    its connection and retries once on a fresh one, which is how publishing resumes by itself
    once the broker is back. Each attempt is bounded by half the publish budget.

    Create it in the process that uses it (after gunicorn forks): sockets must not be shared.
    """

    def __init__(self, url: str | None, state_dir: Path, timeout: float) -> None:
        self._url = url
        self._state_dir = state_dir
        self._attempt_timeout = timeout / ATTEMPTS
        self._idle: queue.LifoQueue[_Channel] = queue.LifoQueue()

    def _borrow(self) -> _Channel:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return _Channel(self._url, self._state_dir, self._attempt_timeout)

    def publish(self, flavour: str, body: bytes) -> None:
        """Store `body` on the flavour's queue.

        Raises:
            BrokerUnavailableError: the broker did not take the message in the time budget.
        """
        self._run(lambda channel: channel.publish(flavour, body), attempts=ATTEMPTS)

    def check(self, flavour: str) -> None:
        """Probe the broker with one round trip (declaring the flavour's queue).

        Raises:
            BrokerUnavailableError: the broker did not answer in time.
        """
        self._run(lambda channel: channel.probe(flavour), attempts=1)

    def _run(self, operation: Callable[[_Channel], None], attempts: int) -> None:
        channel = self._borrow()
        try:
            for attempt in range(1, attempts + 1):
                try:
                    operation(channel)
                    return
                except Exception as exc:
                    # The transport's own error classes are known once it is loaded.
                    recoverable: tuple[type[BaseException], ...] = (
                        OSError,
                        KombuError,
                        *channel.errors,
                    )
                    if not isinstance(exc, recoverable):
                        raise
                    channel.reset()
                    logger.warning("broker attempt %d/%d failed: %r", attempt, attempts, exc)
                    if attempt == attempts:
                        raise BrokerUnavailableError() from exc
        finally:
            self._idle.put(channel)

    def close(self) -> None:
        """Drop every idle connection (used at shutdown and by tests)."""
        while True:
            try:
                self._idle.get_nowait().reset()
            except queue.Empty:
                return
