"""WSGI entry point: ``gunicorn httprequest_lego_provider.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "httprequest_lego_provider.settings")

application = get_wsgi_application()

# Share this worker's metrics with the server's other workers and serve their sum on
# DJANGO_METRICS_PORT (before anything is counted: see api.metrics).
from api.metrics import serve_metrics  # noqa: E402

serve_metrics()

# Build the DNS backend when the worker starts, so a bad configuration stops the start with its
# message instead of failing the first request.
from api.backend import get_backend  # noqa: E402

get_backend()
