"""A consumer thread: its own broker connection, one message at a time, at-least-once.

Delivery semantics. A message is acknowledged only once its outcome is final (a runner took
the job, or it never can) or once its next attempt is safely on the queue: a requeue
publishes the copy with `X-Process-Count` + 1 (confirmed by RabbitMQ) *before* acknowledging
the original. Killed between the two, both copies exist and the job is attempted twice; the
second attempt asks GitHub first and acknowledges without spawning when the job was taken.
Killed at any other point, the message is unacknowledged and the broker hands it to another
consumer: RabbitMQ at once, Redis once its visibility timeout has passed, and on the embedded
filesystem broker and MongoDB (which forget a delivered message) through the held-message
journal when a dispatcher next starts (see held.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from kombu.connection import Connection
from kombu.messaging import Consumer, Producer
from kombu.transport.base import Message
from webhook_router import broker

from runner_dispatcher.attempts import HEADER, backoff_seconds, previous_attempts
from runner_dispatcher.contract import RejectedMessage, parse_job
from runner_dispatcher.held import HeldJournal
from runner_dispatcher.job_handler import Decision, JobHandler, Outcome
from runner_dispatcher.metrics import Metrics
from runner_dispatcher.settings import Settings

logger = logging.getLogger(__name__)
END = "__END__"
# Seconds one drain_events call blocks; bounds how late a consumer sees the stop flag.
DRAIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 5.0
ACCEPTED_CONTENT_TYPES = ["application/json", "text/plain"]


def forgets_delivered_messages(settings: Settings) -> bool:
    """Whether the broker deletes a message when delivering it (kombu's virtual transports)."""
    scheme = (settings.broker_url or "filesystem").split("://", 1)[0].lower()
    return scheme == "filesystem" or scheme.startswith("mongodb")


def open_connection(settings: Settings) -> Connection:
    """A connection with the router's broker options plus the consumer's own."""
    conn = broker.connection(
        settings.broker_url, settings.state_dir, settings.broker_timeout_seconds
    )
    scheme = (settings.broker_url or "filesystem").split("://", 1)[0].lower()
    # Kombu reads transport options when the transport is first used: not yet.
    options = cast("dict[str, object]", conn.transport_options)  # kombu sets {} when unset
    if scheme in {"redis", "rediss"}:
        options.update(
            {
                "visibility_timeout": settings.redis_visibility_timeout_seconds,
                # Scan for abandoned messages on every idle poll, not every tenth.
                "unacked_restore_throttle": 1,
            }
        )
    elif scheme == "filesystem" or scheme.startswith("mongodb"):
        options["polling_interval"] = settings.poll_seconds
    return conn


class QueueConsumer(threading.Thread):
    """Consume the configured flavours until `stop` is set; reconnect after broker failures."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        handler: JobHandler,
        metrics: Metrics,
        stop: threading.Event,
        journal: HeldJournal | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._settings = settings
        self._handler = handler
        self._metrics = metrics
        self._stop_event = stop
        self._journal = journal
        self.connected = threading.Event()

    def run(self) -> None:
        """Consume; after a broker failure wait (doubling up to 5 s) and reconnect."""
        delay = 0.1
        while not self._stop_event.is_set():
            try:
                self._consume()
                delay = 0.1
            except Exception as exc:
                self.connected.clear()
                self._metrics.broker_errors.inc()
                logger.warning("%s: broker failure, reconnecting: %r", self.name, exc)
                self._stop_event.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        self.connected.clear()

    def _consume(self) -> None:
        with open_connection(self._settings) as conn:
            conn.ensure_connection(max_retries=1)
            if self._journal is not None:
                self._journal.recover(conn, self._settings.broker_timeout_seconds)
            channel = conn.channel()
            producer = Producer(channel)
            consumers = [
                Consumer(
                    channel,
                    queues=[broker.flavour_queue(flavour)],
                    on_message=self._on_message(flavour, producer),
                    # The router's JSON-encoded text, or text put by `SimpleQueue.put(text)`;
                    # never pickle or other formats that run code when decoded.
                    accept=ACCEPTED_CONTENT_TYPES,
                )
                for flavour in self._settings.flavours
            ]
            # One unacknowledged message per connection, whatever the number of flavours:
            # a message waiting in this process's buffer could be served by another consumer.
            channel.basic_qos(0, 1, True)
            for consumer in consumers:
                consumer.consume()
            self.connected.set()
            while not self._stop_event.is_set():
                try:
                    conn.drain_events(timeout=DRAIN_SECONDS)
                except TimeoutError:
                    continue
            for consumer in consumers:
                consumer.cancel()

    def _on_message(self, flavour: str, producer: Producer) -> Callable[[Message], None]:
        def on_message(message: Message) -> None:
            self._metrics.consumed.labels(flavour).inc()
            self._metrics.in_flight.inc()
            entry = None if self._journal is None else self._journal.hold(flavour, message)
            try:
                self._process(flavour, message, producer)
            finally:
                # Finished, handed back, or (on an error) restored by kombu when the
                # connection closes: in every case the broker no longer needs our copy.
                if entry is not None and self._journal is not None:
                    self._journal.release(entry)
                self._metrics.in_flight.dec()

        return on_message

    def _process(self, flavour: str, message: Message, producer: Producer) -> None:
        try:
            payload: Any = message.payload
        except Exception:
            payload = None
        if payload == END:
            message.ack()
            self._metrics.acked.labels(flavour, "end").inc()
            logger.info("%s: %s received on %s, stopping", self.name, END, flavour)
            self._stop_event.set()
            return
        try:
            previous = previous_attempts(message.headers)
            job = parse_job(
                payload,
                supported_labels=self._settings.labels_for(flavour),
                api_url=self._settings.api_url,
            )
        except RejectedMessage as exc:
            logger.warning("rejected a message on %s for good: %s", flavour, exc)
            self._finish(flavour, message, Decision(Outcome.REJECT, exc.reason))
            return
        attempt = previous + 1
        if attempt > self._settings.max_attempts:
            logger.warning("job %s: rejected for good after %d attempts", job.url, previous)
            self._finish(flavour, message, Decision(Outcome.REJECT, "too_many_attempts"))
            return
        wait = backoff_seconds(
            previous, self._settings.backoff_base_seconds, self._settings.backoff_max_seconds
        )
        if self._stop_event.wait(wait):
            # Stopping before this attempt began: hand the message back with its count.
            message.requeue()
            return
        try:
            decision = self._handler.attempt(job, flavour, attempt)
        except Exception:
            # A bug or a spawner raising something unexpected: count the attempt, so the
            # message is rejected after the last one instead of coming back for ever.
            logger.exception("job %s: attempt %d failed unexpectedly", job.url, attempt)
            decision = Decision(Outcome.REQUEUE, "internal_error")
        if decision.outcome is Outcome.REQUEUE:
            if attempt >= self._settings.max_attempts:
                logger.warning(
                    "job %s: rejected for good, attempt %d of %d failed (%s)",
                    job.url,
                    attempt,
                    self._settings.max_attempts,
                    decision.reason,
                )
                decision = Decision(Outcome.REJECT, "attempts_exhausted")
            else:
                self._republish(flavour, message, producer, attempt)
                logger.info(
                    "job %s: requeued after attempt %d (%s)", job.url, attempt, decision.reason
                )
        self._finish(flavour, message, decision)

    def _republish(self, flavour: str, message: Message, producer: Producer, count: int) -> None:
        """Put the next attempt on the queue, confirmed, before the original is acknowledged."""
        producer.publish(
            message.body,
            exchange="",
            routing_key=flavour,
            headers={**(message.headers or {}), HEADER: count},
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=2,
            timeout=self._settings.broker_timeout_seconds,
            confirm_timeout=self._settings.broker_timeout_seconds,
        )

    def _finish(self, flavour: str, message: Message, decision: Decision) -> None:
        if decision.outcome is Outcome.REJECT:
            message.reject(requeue=False)
            self._metrics.rejected.labels(flavour, decision.reason).inc()
        elif decision.outcome is Outcome.REQUEUE:
            message.ack()
            self._metrics.requeued.labels(flavour, decision.reason).inc()
        else:
            message.ack()
            self._metrics.acked.labels(flavour, decision.reason).inc()
