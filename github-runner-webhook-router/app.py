"""WSGI entry point (the rock's Flask extension and gunicorn look for `app` here)."""

from __future__ import annotations

import os

from webhook_router import create_app
from webhook_router.settings import Settings

app = create_app(Settings.from_env(os.environ))
