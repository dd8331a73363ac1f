"""HTTP endpoints: parse the request, call the dispatcher, answer with a short text."""

from __future__ import annotations

import ipaddress
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
    SourceNotAllowedError,
)
from webhook_router.payload import parse_job
from webhook_router.settings import Network

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
    if router.settings.allowed_networks:
        _check_source(router)
    if request.content_length is None and "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    ):
        raise LengthRequiredError()
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise BodyTooLargeError() from exc
    secrets = router.settings.webhook_secrets
    if secrets:
        matched = signature.verify(secrets, body, request.headers.get("X-Hub-Signature-256"))
        router.metrics.signature_matches.labels(position=str(matched)).inc()
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
    router.metrics.count(outcome.kind, flavour=outcome.flavour, reason=outcome.reason)
    return _text(outcome.message)


def _check_source(router: Dispatcher) -> None:
    """Refuse clients outside the allowed networks (checked before the body is read).

    Behind a proxy the peer is the proxy: with a client address header configured, its last
    value (the one the nearest proxy added) names the client, believed only from a trusted
    proxy when trusted proxies are configured.
    """
    settings = router.settings
    address = request.remote_addr or ""
    header = settings.client_address_header
    if header is not None and _in(address, settings.trusted_proxies, empty=True):
        # A proxy may append to the header or add another one: the last value of all counts.
        forwarded = request.headers.getlist(header)
        if forwarded:
            address = ",".join(forwarded).rsplit(",", 1)[-1].strip()
    if not _in(address, settings.allowed_networks, empty=False):
        raise SourceNotAllowedError()


def _in(address: str, networks: tuple[Network, ...], *, empty: bool) -> bool:
    """Whether `address` is in one of `networks`; `empty` is the answer for no networks."""
    if not networks:
        return empty
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in networks)


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
