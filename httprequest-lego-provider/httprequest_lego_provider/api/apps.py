"""Django application configuration."""

from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The provider's only Django application."""

    name = "api"
    default_auto_field = "django.db.models.BigAutoField"
