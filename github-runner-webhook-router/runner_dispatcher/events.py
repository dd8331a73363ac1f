"""The lifecycle events consumer: records which jobs runners took, for every dispatcher to see.

With DISPATCHER_LIFECYCLE_EVENTS on, one thread per dispatcher process reads the router's
`<flavour>.events` queues on its own connection, so events never wait behind (nor hold up) a
job. An `in_progress` or `completed` event is written to the taken-jobs store (taken.py)
before it is acknowledged; a `waiting` one is only acknowledged (no runner has the job yet).
A malformed event is rejected for good and counted. A store that cannot be written puts the
event back for a later try. Events are a shortcut, never the only word: a lost one (on the
embedded broker or MongoDB, which forget a message once delivered, a dispatcher killed with
events in its buffer) only costs the GitHub call that is made without events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kombu.messaging import Consumer
from kombu.transport.base import Message
from webhook_router import broker
from webhook_router.message import events_queue

from runner_dispatcher.consumer import ACCEPTED_CONTENT_TYPES, BrokerThread, open_connection
from runner_dispatcher.contract import RejectedMessage, parse_event
from runner_dispatcher.metrics import Metrics
from runner_dispatcher.settings import Settings
from runner_dispatcher.taken import TakenStore, TakenStoreError

logger = logging.getLogger(__name__)
# Events are recorded in a millisecond: a few in this process's buffer keep the thread busy.
# Those not yet acknowledged go back to the queue if the dispatcher dies (RabbitMQ, Redis).
EVENTS_PREFETCH = 32
# After a failed write, the event goes back and the store is left alone this long.
STORE_RETRY_SECONDS = 1.0


class EventsConsumer(BrokerThread):
    """Consume every served flavour's events queue until `stop` is set."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        store: TakenStore,
        metrics: Metrics,
        stop: threading.Event,
    ) -> None:
        super().__init__(name, settings, metrics, stop)
        self._store = store

    def _consume(self) -> None:
        with open_connection(self._settings) as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            consumers = [
                Consumer(
                    channel,
                    # Declared as the router declares it (like the job queue).
                    queues=[broker.flavour_queue(events_queue(flavour))],
                    on_message=self._on_event(flavour),
                    accept=ACCEPTED_CONTENT_TYPES,
                )
                for flavour in self._settings.flavours
            ]
            channel.basic_qos(0, EVENTS_PREFETCH, True)
            self._serve(conn, consumers)

    def _on_event(self, flavour: str) -> Callable[[Message], None]:
        def on_event(message: Message) -> None:
            self._metrics.events_consumed.labels(flavour).inc()
            self._record(flavour, message)

        return on_event

    def _record(self, flavour: str, message: Message) -> None:
        try:
            payload: Any = message.payload
        except Exception:  # a body or content type kombu refuses to decode
            payload = None
        try:
            event = parse_event(payload)
        except RejectedMessage as exc:
            logger.warning("rejected an event on %s for good: %s", events_queue(flavour), exc)
            message.reject(requeue=False)
            self._metrics.events_rejected.labels(flavour, exc.reason).inc()
            return
        if event.taken:
            try:
                self._store.record(event.job_id, event.run_attempt, event.action)
            except TakenStoreError as exc:
                logger.warning("event of job %d put back: %s", event.job_id, exc)
                self._metrics.taken_store_errors.labels("record").inc()
                message.requeue()
                self._metrics.events_requeued.labels(flavour).inc()
                self._stop_event.wait(STORE_RETRY_SECONDS)
                return
        message.ack()
        self._metrics.events_acked.labels(flavour, event.action).inc()
        logger.debug(
            "job %d run attempt %d: %s event recorded",
            event.job_id,
            event.run_attempt,
            event.action,
        )
