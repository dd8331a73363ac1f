"""Settings of the operator's tools: the metrics port, the audit retention and the janitor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Beside the rock's statsd exporter (9102), as the charm's app_metrics_port tells the app.
DEFAULT_METRICS_PORT = 9103
DEFAULT_AUDIT_RETENTION_DAYS = 90
# lego cleans up within minutes of presenting; a record this old was left by a crashed client.
DEFAULT_JANITOR_MAX_AGE_SECONDS = 3 * 3600
DEFAULT_JANITOR_INTERVAL_SECONDS = 300


def _whole(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name} must be a whole number from {low} to {high}")
    return value


@dataclass(frozen=True)
class OperationsSettings:
    """What ``DJANGO_METRICS_*``, ``DJANGO_AUDIT_*`` and ``DJANGO_JANITOR_*`` say.

    Attributes:
        metrics_port: the port the service's own metrics are served on; 0 serves none.
        metrics_address: the address that port is bound to.
        audit_retention_days: audit rows older than this are removed by ``prune_audit``.
        janitor_max_age: seconds after which a record no client withdrew is removed.
        janitor_interval: seconds between two runs of ``janitor --every``.
    """

    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_address: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another pod
    audit_retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS
    janitor_max_age: int = DEFAULT_JANITOR_MAX_AGE_SECONDS
    janitor_interval: int = DEFAULT_JANITOR_INTERVAL_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperationsSettings:
        """Validate the variables; raise ImproperlyConfigured naming the one that is wrong."""
        return cls(
            metrics_port=_whole(environ, "DJANGO_METRICS_PORT", DEFAULT_METRICS_PORT, 0, 65535),
            metrics_address=environ.get("DJANGO_METRICS_ADDRESS", "").strip() or "0.0.0.0",  # noqa: S104
            audit_retention_days=_whole(
                environ, "DJANGO_AUDIT_RETENTION_DAYS", DEFAULT_AUDIT_RETENTION_DAYS, 1, 36500
            ),
            janitor_max_age=_whole(
                environ, "DJANGO_JANITOR_MAX_AGE", DEFAULT_JANITOR_MAX_AGE_SECONDS, 60, 10**8
            ),
            janitor_interval=_whole(
                environ, "DJANGO_JANITOR_INTERVAL", DEFAULT_JANITOR_INTERVAL_SECONDS, 1, 86400
            ),
        )


def operations() -> OperationsSettings:
    """The configured values: ``settings.OPERATIONS``, else read from the settings' environment.

    ``settings.DNS_BACKEND_ENVIRON`` is the process environment as the settings read it once.
    """
    configured = getattr(settings, "OPERATIONS", None)
    if isinstance(configured, OperationsSettings):
        return configured
    return OperationsSettings.from_env(settings.DNS_BACKEND_ENVIRON)
