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
from urllib.parse import urlsplit

from api.names import InvalidNameError, normalise_domain
from django.core.exceptions import ImproperlyConfigured
from dns_backends.deadline import DEFAULT_DEADLINE_SECONDS

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


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be a whole number of at least {minimum}")
    return value


MAX_REQUEST_DEADLINE_SECONDS = 300.0


def _request_deadline(environ: Mapping[str, str]) -> float:
    """Seconds a request's backend work may take (``DJANGO_REQUEST_DEADLINE``)."""
    raw = environ.get("DJANGO_REQUEST_DEADLINE", "").strip()
    if not raw:
        return DEFAULT_DEADLINE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_REQUEST_DEADLINE_SECONDS:
        raise ImproperlyConfigured(
            f"DJANGO_REQUEST_DEADLINE={raw!r} must be a number of seconds above 0 and at most "
            f"{MAX_REQUEST_DEADLINE_SECONDS:g}"
        )
    return value


def _base_url(environ: Mapping[str, str]) -> str | None:
    raw = environ.get("DJANGO_BASE_URL", "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured("DJANGO_BASE_URL must be an http:// or https:// URL")
    return raw


@dataclass(frozen=True)
class ClientAddressConfig:
    """How the service learns a request's client address (see :mod:`api.client_address`).

    Attributes:
        proxy_hops: ``DJANGO_PROXY_HOPS``, the number of trusted reverse proxies in front of
            the service, each appending the peer it saw to ``X-Forwarded-For``; 0 (the
            default) uses the connection's peer and ignores the header.
    """

    proxy_hops: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ClientAddressConfig:
        """Read ``DJANGO_PROXY_HOPS``; refuse the variable it replaced, which would do nothing."""
        if environ.get("DJANGO_TRUSTED_PROXY_HEADER", "").strip():
            raise ImproperlyConfigured(
                "DJANGO_TRUSTED_PROXY_HEADER is replaced by DJANGO_PROXY_HOPS: set "
                "DJANGO_PROXY_HOPS=1 behind one proxy that appends to X-Forwarded-For"
            )
        return cls(proxy_hops=_int(environ, "DJANGO_PROXY_HOPS", 0))


@dataclass(frozen=True)
class LoginThrottleLimits:
    """How many failed logins a username or a client address may have per window.

    ``proxy_hops`` is a copy of :attr:`ClientAddressConfig.proxy_hops` that nothing reads any
    more (the client address has its own setting, ``CLIENT_ADDRESS``); it stays only until
    the tests that still name it stop doing so.
    """

    per_username: int
    per_address: int
    window_seconds: int
    proxy_hops: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LoginThrottleLimits:
        """Read the ``DJANGO_LOGIN_*`` variables (0 disables a limit)."""
        return cls(
            per_username=_int(environ, "DJANGO_LOGIN_FAILURES_PER_USERNAME", 10),
            per_address=_int(environ, "DJANGO_LOGIN_FAILURES_PER_ADDRESS", 50),
            window_seconds=_int(environ, "DJANGO_LOGIN_FAILURE_WINDOW", 900, minimum=1),
            proxy_hops=ClientAddressConfig.from_env(environ).proxy_hops,
        )


@dataclass(frozen=True)
class AcmeDnsSettings:
    """The acme-dns API's own settings (see docs/acme-dns.md).

    Attributes:
        zone: ``DJANGO_ACMEDNS_ZONE``, the delegation zone: delegated accounts get
            ``<uuid>.<zone>``; ``None`` allows direct accounts only.
        server_url: ``DJANGO_ACMEDNS_SERVER_URL``, the base URL clients reach the service at,
            written into account files as ``server_url``; optional.
    """

    zone: str | None = None
    server_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AcmeDnsSettings:
        """Read ``DJANGO_ACMEDNS_*``: a bad value stops the start, not every ``/update``."""
        zone = environ.get("DJANGO_ACMEDNS_ZONE", "").strip() or None
        if zone is not None:
            try:
                zone = normalise_domain(zone)
            except InvalidNameError as exc:
                raise ImproperlyConfigured(f"DJANGO_ACMEDNS_ZONE {exc}") from exc
        server_url = environ.get("DJANGO_ACMEDNS_SERVER_URL", "").strip() or None
        if server_url is not None:
            parts = urlsplit(server_url)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or any(c.isspace() or c in "\"'<>" for c in server_url)
            ):
                raise ImproperlyConfigured(
                    "DJANGO_ACMEDNS_SERVER_URL must be an http:// or https:// URL"
                )
        return cls(zone=zone, server_url=server_url)


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
    base_url: str | None = None
    hsts_seconds: int = 31_536_000
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    login_throttle: LoginThrottleLimits = field(
        default_factory=lambda: LoginThrottleLimits.from_env({})
    )
    request_deadline: float = DEFAULT_DEADLINE_SECONDS
    client_address: ClientAddressConfig = field(default_factory=ClientAddressConfig)
    acmedns: AcmeDnsSettings = field(default_factory=AcmeDnsSettings)

    @property
    def https(self) -> bool:
        """Whether people reach the service over HTTPS (a TLS-terminating ingress).

        Decided by ``DJANGO_BASE_URL``, which the charm always sets: to the ingress URL when
        there is one, else to the plain ``http://<app>.<model>:8000`` address. Without it (a
        local run, the tests) the service is reached over plain HTTP.
        """
        return self.base_url is not None and urlsplit(self.base_url).scheme == "https"

    @property
    def public_origin(self) -> str | None:
        """``scheme://host[:port]`` of ``DJANGO_BASE_URL``, for CSRF's trusted origins."""
        if self.base_url is None:
            return None
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def public_host(self) -> str | None:
        """The host (and port) of ``DJANGO_BASE_URL``, where HTTPS redirects go."""
        return urlsplit(self.base_url).netloc if self.base_url else None

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
            base_url=_base_url(environ),
            hsts_seconds=_int(environ, "DJANGO_HSTS_SECONDS", 31_536_000),
            hsts_include_subdomains=_bool(environ, "DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True),
            hsts_preload=_bool(environ, "DJANGO_HSTS_PRELOAD", default=False),
            login_throttle=LoginThrottleLimits.from_env(environ),
            request_deadline=_request_deadline(environ),
            client_address=ClientAddressConfig.from_env(environ),
            acmedns=AcmeDnsSettings.from_env(environ),
        )
