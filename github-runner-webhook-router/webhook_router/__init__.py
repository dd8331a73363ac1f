"""GitHub runner webhook router: routes workflow_job webhooks to per-flavour job queues."""

from __future__ import annotations

import logging

from flask import Flask

from webhook_router.dispatch import Dispatcher
from webhook_router.metrics import create_metrics
from webhook_router.settings import UNSIGNED_OPT_OUT, Settings
from webhook_router.views import EXTENSION, bp, register_error_handlers

__all__ = ["Settings", "create_app"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> Flask:
    """Build the Flask app for the given settings.

    Broker and dedup clients are created per process on first use, so the app can be created
    before gunicorn forks its workers.

    Args:
        settings: the validated configuration.

    Returns:
        The app.
    """
    _configure_logging(settings.log_level)
    if not settings.webhook_secrets:
        logger.warning(
            "%s=true and no FLASK_WEBHOOK_SECRET: webhook signatures are NOT checked; anyone"
            " who can reach this service can queue jobs",
            UNSIGNED_OPT_OUT,
        )
    app = Flask(__name__)
    # Werkzeug refuses larger bodies with 413 before reading them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    metrics = create_metrics(settings.state_dir, settings.metrics_port, settings.metrics_address)
    app.extensions[EXTENSION] = Dispatcher(settings, metrics)
    app.register_blueprint(bp)
    register_error_handlers(app)
    return app


def _configure_logging(level: str) -> None:
    package = logging.getLogger(__name__)
    package.setLevel(level)
    if not logging.getLogger().handlers and not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package.addHandler(handler)
