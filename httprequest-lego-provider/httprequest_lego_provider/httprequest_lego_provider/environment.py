"""Read the service's configuration from the environment once, validated, into a dataclass.

Only the variables documented in the README are read; a bad value stops the start with a
message that names the variable.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE_VALUES = ("1", "true", "yes", "on")
FALSE_VALUES = ("", "0", "false", "no", "off")


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _json_list(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} must be a JSON list of strings: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImproperlyConfigured(f"{name} must be a JSON list of strings, got {raw!r}")
    return value


@dataclass(frozen=True)
class ProviderEnvironment:
    """Everything the provider reads from its environment."""

    secret_key: str
    debug: bool
    allowed_hosts: list[str]
    log_level: str
    database_url: str | None
    data_dir: Path
    dns_backend: str
    raw: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ProviderEnvironment:
        """Validate and collect the settings; raise ImproperlyConfigured naming the variable."""
        debug = _bool(environ, "DJANGO_DEBUG", default=False)
        secret_key = environ.get("DJANGO_SECRET_KEY", "")
        if not secret_key:
            if not debug:
                raise ImproperlyConfigured(
                    "DJANGO_SECRET_KEY is not set (required unless DJANGO_DEBUG=true)"
                )
            secret_key = secrets.token_urlsafe(50)
        log_level = environ.get("DJANGO_LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ImproperlyConfigured(
                f"DJANGO_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}"
            )
        database_url = environ.get("POSTGRESQL_DB_CONNECT_STRING") or None
        if database_url and not database_url.startswith(("postgresql://", "postgres://")):
            raise ImproperlyConfigured("POSTGRESQL_DB_CONNECT_STRING must be a postgresql:// URL")
        default_hosts = ["127.0.0.1", "localhost", "[::1]"] if debug else []
        return cls(
            secret_key=secret_key,
            debug=debug,
            allowed_hosts=_json_list(environ, "DJANGO_ALLOWED_HOSTS", default_hosts),
            log_level=log_level,
            database_url=database_url,
            data_dir=Path(environ.get("DJANGO_DATA_DIR", ".local/provider")).resolve(),
            dns_backend=environ.get("DJANGO_DNS_BACKEND", "git"),
            raw=dict(environ),
        )
