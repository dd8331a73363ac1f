"""WSGI entry point: ``gunicorn httprequest_lego_provider.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "httprequest_lego_provider.settings")

application = get_wsgi_application()
