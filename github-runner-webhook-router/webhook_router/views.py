"""HTTP endpoints: parse the request, call the dispatcher, answer with a short text."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from webhook_router import signature
from webhook_router.dispatch import Dispatcher
from webhook_router.errors import (
    BodyTooLargeError,
    BrokerUnavailableError,
    EventMissingError,
    EventUnsupportedError,
    LengthRequiredError,
    PayloadError,
    RouterError,
)
from webhook_router.payload import parse_job

logger = logging.getLogger(__name__)

EXTENSION = "webhook_router"
SUPPORTED_EVENT = "workflow_job"
PING_EVENT = "ping"
MAX_DELIVERY_ID_LENGTH = 100

bp = Blueprint("webhook_router", __name__)


def dispatcher() -> Dispatcher:
    """The app's dispatcher, kept in `app.extensions`."""
    found: Dispatcher = current_app.extensions[EXTENSION]
    return found


def _text(message: str, status: int = 200) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


@bp.post("/webhook")
def webhook() -> Response:
    """Receive a GitHub delivery and queue the job it announces."""
    router = dispatcher()
    if request.content_length is None and "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    ):
        raise LengthRequiredError()
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise BodyTooLargeError() from exc
    secret = router.settings.webhook_secret
    if secret is not None:
        signature.verify(secret, body, request.headers.get("X-Hub-Signature-256"))
    event = request.headers.get("X-GitHub-Event")
    if event is None:
        raise EventMissingError()
    if event == PING_EVENT:
        router.metrics.count("ping")
        return _text("pong")
    if event != SUPPORTED_EVENT:
        raise EventUnsupportedError()
    job = parse_job(body, request.mimetype or None)
    outcome = router.dispatch(job, _delivery_id())
    router.metrics.count(outcome.kind, flavour=outcome.flavour)
    return _text(outcome.message)


def _delivery_id() -> str | None:
    delivery = request.headers.get("X-GitHub-Delivery")
    if delivery is None:
        return None
    if not delivery or len(delivery) > MAX_DELIVERY_ID_LENGTH or not delivery.isascii():
        raise PayloadError("Invalid X-GitHub-Delivery header")
    return delivery


@bp.get("/health")
def health() -> Response:
    """Answer 200 when the broker answers a round trip in time, else 503."""
    dispatcher().check_broker()
    return _text("ok")


@bp.get("/health/live")
def live() -> Response:
    """Answer 200 while the process serves requests; checks nothing else.

    For liveness probes (a broker outage must not restart the pod) and as the framework's
    throughput ceiling in the benchmark.
    """
    return _text("ok")


def register_error_handlers(app: Flask) -> None:
    """Turn every error into a short text answer: the only place errors become responses."""

    @app.errorhandler(RouterError)
    def router_error(error: RouterError) -> Response:
        if request.endpoint == "webhook_router.webhook":
            outcome = "failed" if isinstance(error, BrokerUnavailableError) else "rejected"
            app.extensions[EXTENSION].metrics.count(outcome, reason=error.reason)
        if error.status >= 500:
            logger.error("%s: %s", error.reason, error.message)
        else:
            logger.info("rejected webhook: %s", error.reason)
        return _text(error.message, error.status)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if isinstance(error, RequestEntityTooLarge):  # raised before the view runs
            return router_error(BodyTooLargeError())
        return _text(error.name, error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("unexpected error", exc_info=error)
        return _text("Internal error", 500)
