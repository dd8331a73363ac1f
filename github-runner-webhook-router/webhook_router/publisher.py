"""Publish messages through a per-process pool of long-lived broker connections."""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from kombu.connection import Connection
from kombu.exceptions import KombuError
from kombu.messaging import Producer

from webhook_router import broker
from webhook_router.errors import BrokerUnavailableError
from webhook_router.message import CONTENT_ENCODING, CONTENT_TYPE
from webhook_router.watchdog import Abort, Watchdog

logger = logging.getLogger(__name__)

ATTEMPTS = 2
MAX_ATTEMPTS_IN_FLIGHT = 32
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})

Operation = Callable[["_Channel"], None]


class _Channel:
    """One connection with its producer; used by one thread at a time."""

    def __init__(self, url: str | None, state_dir: Path, timeout: float) -> None:
        self._url = url
        self._scheme = url.split("://", 1)[0].lower() if url else "filesystem"
        self._state_dir = state_dir
        self._timeout = timeout
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._declared: set[str] = set()
        self._sock: socket.socket | None = None
        self.errors: tuple[type[BaseException], ...] = ()

    def _ready_producer(self) -> Producer:
        if self._producer is None:
            conn = broker.connection(self._url, self._state_dir, self._timeout)
            self._connection = conn
            self.errors = (*conn.connection_errors, *conn.channel_errors)
            # No retry here: one bounded try per attempt keeps the webhook's answer in time.
            conn.ensure_connection(max_retries=0)
            if self._scheme in AMQP_SCHEMES:
                self._sock = conn.connection.sock  # connected: this does not reconnect
            self._producer = Producer(conn.channel())
        return self._producer

    def is_warm(self, flavour: str) -> bool:
        """Connected, the queue declared, and a publish is one exchange `aborter` can cut.

        MongoDB is never warm: its client's sockets are out of reach, so every MongoDB attempt
        runs on a helper thread.
        """
        return (
            self._producer is not None
            and flavour in self._declared
            and not self._scheme.startswith("mongodb")
        )

    def aborter(self) -> Abort | None:
        """A function that makes this connection's blocked network calls fail at once.

        It is bound to the sockets of now: called late (after a reset), it touches nothing in
        use. None for the embedded broker, which does no network I/O.
        """
        if self._producer is None:
            return None
        if self._scheme.startswith("redis"):
            pool = self._producer.channel.pool
            return lambda: pool.disconnect(inuse_connections=True)
        sock = self._sock
        if sock is not None:
            return lambda: _shut(sock)
        return None

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
        self._sock = None
        self._declared.clear()
        if connection is not None:
            try:
                connection.collect()  # release sockets without talking to a broken broker
            except Exception:
                logger.debug("ignoring error while dropping a broken connection", exc_info=True)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class Publisher:
    """Thread-safe publisher reusing connections across requests, each attempt time-boxed.

    Connections wait in a stack; a request borrows one, so a sync worker keeps exactly one and
    a threaded worker one per busy thread: nothing is opened per webhook. A failed attempt
    drops its connection and retries once on a fresh one, which is how publishing resumes by
    itself once the broker is back.

    The budget bounds each attempt as a whole, however many network waits it makes: the first
    gets half the budget, the second the rest. A publish on a warm connection (one exchange
    with the broker) runs in the request's thread, watched: at the deadline its sockets are
    shut, so the blocked call fails at once. Anything else (connect, handshake, declare; every
    MongoDB call) runs on a helper thread that the request waits for until the deadline; an
    attempt still running then is abandoned, and its connection recycled once it ends. A
    connection goes back to the stack only after a success, or freshly reset after any error.

    Create it in the process that uses it (after gunicorn forks): sockets must not be shared.
    """

    def __init__(self, url: str | None, state_dir: Path, timeout: float) -> None:
        self._url = url
        self._state_dir = state_dir
        self._budget = timeout
        self._attempt_timeout = timeout / ATTEMPTS
        self._idle: queue.LifoQueue[_Channel] = queue.LifoQueue()
        self._watchdog = Watchdog()
        # Bounded: when the broker hangs, abandoned attempts hold threads until their own
        # socket timeouts end them; later requests then time out waiting, with a 503.
        self._helpers = ThreadPoolExecutor(MAX_ATTEMPTS_IN_FLIGHT, thread_name_prefix="publish")

    def _borrow(self) -> _Channel:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return _Channel(self._url, self._state_dir, self._attempt_timeout)

    def deadline(self) -> float:
        """The `time.monotonic()` instant by which a publish starting now must be done."""
        return time.monotonic() + self._budget

    def publish(self, flavour: str, body: bytes, deadline: float | None = None) -> None:
        """Store `body` on the flavour's queue.

        Args:
            flavour: the queue name.
            body: the wire body.
            deadline: `time.monotonic()` instant to give up at; default: the budget from now.

        Raises:
            BrokerUnavailableError: the broker did not take the message in the time budget.
        """
        self._run(
            lambda channel: channel.publish(flavour, body),
            flavour,
            ATTEMPTS,
            self.deadline() if deadline is None else deadline,
        )

    def check(self, flavour: str) -> None:
        """Probe the broker with one round trip (declaring the flavour's queue).

        Raises:
            BrokerUnavailableError: the broker did not answer in time.
        """
        self._run(
            lambda channel: channel.probe(flavour),
            None,
            1,
            time.monotonic() + self._attempt_timeout,
        )

    def _run(
        self, operation: Operation, flavour: str | None, attempts: int, deadline: float
    ) -> None:
        for attempt in range(1, attempts + 1):
            now = time.monotonic()
            # The first attempt leaves half the budget for the second.
            attempt_deadline = (
                deadline if attempt == attempts else min(deadline, now + self._attempt_timeout)
            )
            if attempt_deadline <= now:
                raise BrokerUnavailableError()
            channel = self._borrow()
            try:
                if flavour is not None and channel.is_warm(flavour):
                    self._attempt_here(channel, operation, attempt_deadline)
                else:
                    self._attempt_on_helper(channel, operation, attempt_deadline)
                return
            except _AttemptError as failure:
                logger.warning("broker attempt %d/%d failed: %s", attempt, attempts, failure)
                if attempt == attempts:
                    raise BrokerUnavailableError() from failure.__cause__
            except Exception as exc:
                # A new exception in this thread; the original stays the cause.
                raise RuntimeError("unexpected error in a broker attempt") from exc

    def _attempt_here(self, channel: _Channel, operation: Operation, deadline: float) -> None:
        """Run one attempt in this thread, its sockets shut by the watchdog at the deadline.

        Raises:
            _AttemptError: a broker error, or the deadline passed.
        """
        abort = channel.aborter()
        token = self._watchdog.arm(deadline, abort) if abort is not None else None
        try:
            _run_on(channel, operation)
        except _RecoverableError as exc:
            fired = token is not None and not self._watchdog.disarm(token)
            self._idle.put(channel)  # reset by _run_on
            why = "no answer before the deadline" if fired else repr(exc.__cause__)
            raise _AttemptError(why) from exc.__cause__
        except BaseException:
            if token is not None:
                self._watchdog.disarm(token)
            self._idle.put(channel)  # reset by _run_on: unknown state never goes back as is
            raise
        if token is not None and not self._watchdog.disarm(token):
            channel.reset()  # stored, but the watchdog may have shut the sockets meanwhile
        self._idle.put(channel)

    def _attempt_on_helper(self, channel: _Channel, operation: Operation, deadline: float) -> None:
        """Run one attempt on a helper thread; wait for it until `deadline`.

        Raises:
            _AttemptError: a broker error, or the deadline passed.
        """
        future = self._helpers.submit(_run_on, channel, operation)
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout as exc:
            if future.cancel():  # never started: the connection was not touched
                self._idle.put(channel)
            else:  # still running: recycle the connection once it ends (reset if it failed)
                future.add_done_callback(lambda _: self._idle.put(channel))
            raise _AttemptError("no answer before the deadline") from exc
        except _RecoverableError as exc:
            self._idle.put(channel)  # reset by _run_on
            raise _AttemptError(repr(exc.__cause__)) from exc.__cause__
        except BaseException:
            self._idle.put(channel)  # reset by _run_on: unknown state never goes back as is
            raise
        self._idle.put(channel)

    def close(self) -> None:
        """Drop every idle connection and the helper threads (at shutdown and by tests)."""
        self._helpers.shutdown(wait=False)
        self._helpers = ThreadPoolExecutor(MAX_ATTEMPTS_IN_FLIGHT, thread_name_prefix="publish")
        while True:
            try:
                self._idle.get_nowait().reset()
            except queue.Empty:
                return


class _AttemptError(Exception):
    """One attempt did not store the message; the next one may."""


class _RecoverableError(Exception):
    """A broker error in an attempt, raised with the broker's error as its cause."""


def _run_on(channel: _Channel, operation: Operation) -> None:
    """Run `operation`; reset the connection after any error, so it goes back known-good.

    A broker's own errors become `_RecoverableError` (a new exception object per attempt);
    anything else is a bug, re-raised after the reset.
    """
    try:
        operation(channel)
    except Exception as exc:
        recoverable = isinstance(exc, (OSError, KombuError, *channel.errors))
        channel.reset()
        if recoverable:
            raise _RecoverableError() from exc
        raise
    except BaseException:
        channel.reset()
        raise
