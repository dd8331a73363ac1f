"""A consumer thread: its own broker connection, one message at a time, at-least-once.

Delivery semantics. A message is acknowledged only once its outcome is final (a runner took
the job, or it never can) or once its next delivery is safely on the queue: a requeue
publishes the copy (confirmed by RabbitMQ) *before* acknowledging the original. Killed
between the two, both copies exist and the job is attempted twice; the second attempt asks
GitHub first and acknowledges without spawning when the job was taken. Killed at any other
point, the message is unacknowledged and the broker hands it to another consumer: RabbitMQ
at once, Redis once its visibility timeout has passed, and on the embedded filesystem broker
and MongoDB (which forget a delivered message) through the held-message journal (see
held.py). Such a redelivered message, like one handed back marked spawned at a stop, is
watched for the pickup window before any spawn: its runner may be booting already.

Attempts (X-Process-Count) count what was tried: a failed spawn, a runner that never took
the job. GitHub being unavailable is not an attempt: the copy keeps the count and carries
the outage headers instead (see attempts.py), bounded in time, never in number.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, cast

from kombu.connection import Connection
from kombu.messaging import Consumer, Producer
from kombu.transport.base import Message
from webhook_router import broker

from runner_dispatcher.attempts import (
    HEADER,
    RECOVERED_HEADER,
    SPAWNED_AT_HEADER,
    TRANSIENT_HEADERS,
    UNAVAILABLE_HEADER,
    UNAVAILABLE_SINCE_HEADER,
    History,
    backoff_seconds,
    history,
    now_seconds,
)
from runner_dispatcher.contract import QueuedJob, RejectedMessage, parse_job
from runner_dispatcher.held import HeldJournal
from runner_dispatcher.job_handler import (
    TAKEN_EVENT,
    UNAVAILABLE_REASONS,
    Decision,
    JobHandler,
    Outcome,
    Pause,
)
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


class BrokerThread(threading.Thread):
    """A daemon thread that consumes until `stop` is set and reconnects after broker failures.

    `connected` is set while it is connected and consuming (the health endpoint reads it).
    """

    def __init__(
        self, name: str, settings: Settings, metrics: Metrics, stop: threading.Event
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._settings = settings
        self._metrics = metrics
        self._stop_event = stop
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
        """One connection's life: connect, consume until stopped; raises on broker failures."""
        raise NotImplementedError

    def _serve(
        self,
        conn: Connection,
        consumers: list[Consumer],
        between: Callable[[], None] | None = None,
    ) -> None:
        """Consume with `consumers` until stopped, calling `between` before each drain."""
        # Connected before consuming: the broker may deliver (and this thread work on a
        # message for minutes) within `consume()` itself.
        self.connected.set()
        for consumer in consumers:
            consumer.consume()
        while not self._stop_event.is_set():
            if between is not None:
                between()
            try:
                conn.drain_events(timeout=DRAIN_SECONDS)
            except TimeoutError:
                continue
        for consumer in consumers:
            consumer.cancel()


class QueueConsumer(BrokerThread):
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
        super().__init__(name, settings, metrics, stop)
        self._handler = handler
        self._journal = journal

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
            self._serve(conn, consumers, lambda: self._recover_if_due(conn))

    def _recover_if_due(self, conn: Connection) -> None:
        if self._journal is not None and self._journal.due():
            self._journal.recover(conn, self._settings.broker_timeout_seconds)

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
            past = history(message.headers)
            job = parse_job(
                payload,
                supported_labels=self._settings.labels_for(flavour),
                api_url=self._settings.api_url,
            )
        except RejectedMessage as exc:
            logger.warning("rejected a message on %s for good: %s", flavour, exc)
            self._finish(flavour, message, Decision(Outcome.REJECT, exc.reason))
            return
        headers = dict(message.headers or {})
        if self._stop_event.is_set():
            # Delivered while stopping (the copy of a job just handed back, say): untouched.
            marked = {**headers, RECOVERED_HEADER: 1} if _redelivered(message) else headers
            self._republish(flavour, message, producer, marked)
            self._finish(flavour, message, Decision(Outcome.REQUEUE, "stopping"))
            return
        if past.spawned or _redelivered(message):
            self._watch(flavour, message, producer, job, past, headers)
            return
        attempt = past.previous + 1
        if attempt > self._settings.max_attempts:
            logger.warning("job %s: rejected for good after %d attempts", job.url, past.previous)
            self._finish(flavour, message, Decision(Outcome.REJECT, "too_many_attempts"))
            return
        # Outage requeues lengthen the wait like attempts, never past the longest backoff.
        waits = min(past.previous + past.unavailable, self._settings.max_attempts - 1)
        wait = backoff_seconds(
            waits, self._settings.backoff_base_seconds, self._settings.backoff_max_seconds
        )
        paused = self._handler.pause(job, wait)
        if paused is Pause.TAKEN:
            # A lifecycle event said a runner took it while it waited: nothing to attempt.
            self._finish(flavour, message, Decision(Outcome.ACK, TAKEN_EVENT))
            return
        if paused is Pause.STOPPING:
            # Stopping before this attempt began: hand the message back with its count.
            self._republish(flavour, message, producer, _fresh(headers))
            self._finish(flavour, message, Decision(Outcome.REQUEUE, "stopping"))
            return
        try:
            decision = self._handler.attempt(job, flavour, attempt)
        except Exception:
            # A bug or a spawner raising something unexpected: count the attempt, so the
            # message is rejected after the last one instead of coming back for ever.
            logger.exception("job %s: attempt %d failed unexpectedly", job.url, attempt)
            decision = Decision(Outcome.REQUEUE, "internal_error")
        if decision.outcome is Outcome.HAND_BACK:
            # A runner was started; its pickup not yet seen. Same count, marked spawned.
            self._republish(
                flavour, message, producer, {**headers, SPAWNED_AT_HEADER: now_seconds()}
            )
            logger.info("job %s: handed back after the spawn, stopping", job.url)
        elif decision.outcome is Outcome.REQUEUE and decision.reason in UNAVAILABLE_REASONS:
            decision = self._requeue_unavailable(flavour, message, producer, job, past, decision)
        elif decision.outcome is Outcome.REQUEUE:
            decision = self._requeue_attempt(flavour, message, producer, job, attempt, decision)
        self._finish(flavour, message, decision)

    def _watch(
        self,
        flavour: str,
        message: Message,
        producer: Producer,
        job: QueuedJob,
        past: History,
        headers: dict[str, Any],
    ) -> None:
        """A runner may already exist for this job: watch for its pickup before any spawn.

        Marked spawned (the last holder stopped after a spawn) or redelivered after a crash
        (the holder may have spawned). Taken in the pickup window: done. Not taken: a marked
        spawn's attempt failed (count + 1); a redelivery's attempt is tried again (count
        unchanged), with the usual backoff, by whoever takes the copy.
        """
        try:
            decision = self._handler.watch(job)
        except Exception:
            logger.exception("job %s: watching for the pickup failed unexpectedly", job.url)
            decision = Decision(Outcome.REQUEUE, "internal_error")
        if decision.outcome is Outcome.HAND_BACK:
            marked = headers if past.spawned else {**headers, RECOVERED_HEADER: 1}
            self._republish(flavour, message, producer, marked)
        elif decision.outcome is Outcome.REQUEUE and past.spawned:
            attempt = past.previous + 1
            decision = self._requeue_attempt(flavour, message, producer, job, attempt, decision)
        elif decision.outcome is Outcome.REQUEUE:
            self._republish(flavour, message, producer, _fresh(headers))
            logger.info(
                "job %s: redelivered and not taken, requeued (%s)", job.url, decision.reason
            )
        self._finish(flavour, message, decision)

    def _requeue_attempt(
        self,
        flavour: str,
        message: Message,
        producer: Producer,
        job: QueuedJob,
        attempt: int,
        decision: Decision,
    ) -> Decision:
        """A failed attempt: the next one on the queue, or rejected after the last."""
        if attempt >= self._settings.max_attempts:
            logger.warning(
                "job %s: rejected for good, attempt %d of %d failed (%s)",
                job.url,
                attempt,
                self._settings.max_attempts,
                decision.reason,
            )
            return Decision(Outcome.REJECT, "attempts_exhausted")
        headers = _fresh(message.headers or {})
        for name in (UNAVAILABLE_HEADER, UNAVAILABLE_SINCE_HEADER):
            headers.pop(name, None)
        self._republish(flavour, message, producer, {**headers, HEADER: attempt})
        logger.info("job %s: requeued after attempt %d (%s)", job.url, attempt, decision.reason)
        return decision

    def _requeue_unavailable(
        self,
        flavour: str,
        message: Message,
        producer: Producer,
        job: QueuedJob,
        past: History,
        decision: Decision,
    ) -> Decision:
        """GitHub could not be asked: not an attempt; requeued until the outage bound."""
        now = now_seconds()
        since = now if past.unavailable_since is None else past.unavailable_since
        if now - since >= self._settings.github_outage_max_seconds:
            logger.warning(
                "job %s: rejected for good, GitHub unavailable for %d s (%s)",
                job.url,
                now - since,
                decision.reason,
            )
            return Decision(Outcome.REJECT, "github_unavailable_too_long")
        headers = {
            **_fresh(message.headers or {}),
            UNAVAILABLE_HEADER: past.unavailable + 1,
            UNAVAILABLE_SINCE_HEADER: int(since),
        }
        self._republish(flavour, message, producer, headers)
        logger.info(
            "job %s: requeued, attempt count kept at %d (%s)",
            job.url,
            past.previous,
            decision.reason,
        )
        return decision

    def _republish(
        self, flavour: str, message: Message, producer: Producer, headers: dict[str, Any]
    ) -> None:
        """Put the copy on the queue, confirmed, before the original is acknowledged."""
        producer.publish(
            message.body,
            exchange="",
            routing_key=flavour,
            headers=headers,
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
        elif decision.outcome in {Outcome.REQUEUE, Outcome.HAND_BACK}:
            message.ack()
            self._metrics.requeued.labels(flavour, decision.reason).inc()
        else:
            message.ack()
            self._metrics.acked.labels(flavour, decision.reason).inc()


def _redelivered(message: Message) -> bool:
    """Whether the broker or the journal gave this message before (its holder died)."""
    info = message.delivery_info or {}
    headers = message.headers or {}
    return bool(info.get("redelivered")) or headers.get(RECOVERED_HEADER) is not None


def _fresh(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers without the marks of one delivery (spawned, recovered, kombu's own)."""
    return {
        name: value
        for name, value in headers.items()
        if name not in TRANSIENT_HEADERS and name != "redelivered"
    }
