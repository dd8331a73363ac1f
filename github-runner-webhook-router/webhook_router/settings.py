"""Configuration: read from the environment once at start, validated, then passed explicitly."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from webhook_router.errors import ConfigError
from webhook_router.routing import RoutingTable, parse_flavours, parse_label_list

DEFAULT_SELF_HOSTED_LABELS = "self-hosted,linux"
# GitHub never delivers more than 25 MB; a workflow_job payload is a few KB, so 1 MiB leaves
# ample room for long step lists while refusing junk early.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
GITHUB_MAX_BODY_BYTES = 25 * 1024 * 1024
# GitHub allows redelivering a delivery for 3 days: remember ids that long.
DEFAULT_DEDUP_WINDOW_SECONDS = 3 * 24 * 3600
# GitHub waits 10 s for an answer; broker work gets 3 s (two attempts of 1.5 s), the dedup store
# 0.5 s per call, so the worst case answer comes in about 4 s.
DEFAULT_PUBLISH_TIMEOUT_SECONDS = 3.0
MAX_PUBLISH_TIMEOUT_SECONDS = 8.0
DEFAULT_METRICS_PORT = 9102
BROKER_SCHEMES = frozenset(
    {"mongodb", "mongodb+srv", "amqp", "amqps", "pyamqp", "redis", "rediss", "filesystem"}
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_Number = TypeVar("_Number", int, float)


def default_state_dir() -> Path:
    """Where local state goes without FLASK_STATE_DIR: a folder in the system's temp dir."""
    return Path(tempfile.gettempdir()) / "github-runner-webhook-router"


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know, validated.

    Attributes:
        routing: the routing table, default flavour and default labels.
        webhook_secret: the shared secret GitHub signs bodies with; None disables checking.
        log_level: a `logging` level name.
        broker_url: kombu URL of the broker; None selects the embedded file-based broker.
        state_dir: where the embedded broker, the SQLite dedup store and metrics files live.
        max_body_bytes: largest accepted request body.
        dedup_window_seconds: how long a delivery id is remembered; 0 disables dedup.
        dedup_url: `redis://` URL of a shared dedup store; None means the broker's Redis
            when the broker is Redis, else a SQLite file in state_dir.
        publish_timeout_seconds: budget for storing one job in the broker.
        metrics_port: Prometheus port; 0 keeps metrics in-process only (no server).
        metrics_address: address the metrics server binds.
    """

    routing: RoutingTable
    webhook_secret: bytes | None = None
    log_level: str = "INFO"
    broker_url: str | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    dedup_window_seconds: int = DEFAULT_DEDUP_WINDOW_SECONDS
    dedup_url: str | None = None
    publish_timeout_seconds: float = DEFAULT_PUBLISH_TIMEOUT_SECONDS
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_address: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another pod

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; empty values count as unset.

        Args:
            environ: the environment, usually `os.environ`.

        Returns:
            The validated settings.

        Raises:
            ConfigError: a variable is missing or invalid; the message names it.
        """
        env = {key: value.strip() for key, value in environ.items() if value.strip()}
        if "FLASK_FLAVOURS" not in env:
            raise ConfigError(
                "FLASK_FLAVOURS: not set; give the routing table as YAML, e.g. '- small: [x64]'"
            )
        flavours = parse_flavours(env["FLASK_FLAVOURS"], "FLASK_FLAVOURS")
        default_flavour = env.get("FLASK_DEFAULT_FLAVOUR", flavours[0].name)
        if default_flavour not in {flavour.name for flavour in flavours}:
            raise ConfigError(
                f"FLASK_DEFAULT_FLAVOUR: {default_flavour!r} is not a flavour in FLASK_FLAVOURS"
            )
        routing = RoutingTable(
            flavours=flavours,
            default_flavour=default_flavour,
            default_labels=parse_label_list(
                environ.get("FLASK_DEFAULT_SELF_HOSTED_LABELS", DEFAULT_SELF_HOSTED_LABELS)
            ),
        )
        secret = environ.get("FLASK_WEBHOOK_SECRET", "")
        return cls(
            routing=routing,
            # The secret is used byte for byte, as GitHub does: no stripping.
            webhook_secret=secret.encode() if secret else None,
            log_level=_log_level(env.get("FLASK_LOG_LEVEL", "INFO")),
            broker_url=_broker_url(env.get("MONGODB_DB_CONNECT_STRING")),
            state_dir=Path(env.get("FLASK_STATE_DIR") or default_state_dir()),
            max_body_bytes=_integer(
                env, "FLASK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, GITHUB_MAX_BODY_BYTES
            ),
            dedup_window_seconds=_integer(
                env, "FLASK_DEDUP_WINDOW_SECONDS", DEFAULT_DEDUP_WINDOW_SECONDS, 0, 30 * 24 * 3600
            ),
            dedup_url=_dedup_url(env.get("FLASK_DEDUP_URL")),
            publish_timeout_seconds=_seconds(env),
            metrics_port=_integer(env, "FLASK_METRICS_PORT", DEFAULT_METRICS_PORT, 0, 65535),
            metrics_address=env.get("FLASK_METRICS_ADDRESS", "0.0.0.0"),  # noqa: S104
        )


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"FLASK_LOG_LEVEL: {value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _broker_url(value: str | None) -> str | None:
    """Accept the broker URLs kombu can publish to; the value is never echoed (it has secrets)."""
    if value is None:
        return None
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in BROKER_SCHEMES:
        raise ConfigError(
            "MONGODB_DB_CONNECT_STRING: expected a mongodb://, amqp:// or redis:// URL"
        )
    return value


def _dedup_url(value: str | None) -> str | None:
    if value is None:
        return None
    if urlsplit(value).scheme not in {"redis", "rediss"}:
        raise ConfigError("FLASK_DEDUP_URL: expected a redis:// or rediss:// URL")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return _bounded(env, name, default, low, high, int, "an integer")


def _seconds(env: Mapping[str, str]) -> float:
    return _bounded(
        env,
        "FLASK_PUBLISH_TIMEOUT_SECONDS",
        DEFAULT_PUBLISH_TIMEOUT_SECONDS,
        0.1,
        MAX_PUBLISH_TIMEOUT_SECONDS,
        float,
        "a number of seconds",
        " (GitHub waits 10 s for an answer)",
    )


def _bounded(
    env: Mapping[str, str],
    name: str,
    default: _Number,
    low: _Number,
    high: _Number,
    parse: Callable[[str], _Number],
    kind: str,
    why: str = "",
) -> _Number:
    """Read variable `name` with `parse` (`default` when unset) and check it is in `low`..`high`.

    The messages name the variable: `kind` says what `parse` accepts ("an integer"), `why` is
    appended where the bounds need explaining.

    Raises:
        ConfigError: the value does not parse or is out of bounds.
    """
    text = env.get(name)
    if text is None:
        return default
    try:
        value = parse(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {text!r} is not {kind}") from exc
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is outside {low}..{high}{why}")
    return value
