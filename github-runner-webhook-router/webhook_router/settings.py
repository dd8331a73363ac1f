"""Configuration: read from the environment once at start, validated, then passed explicitly."""

from __future__ import annotations

import ipaddress
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from kombu.transport import resolve_transport

from webhook_router.errors import ConfigError
from webhook_router.message import EVENTS_QUEUE_SUFFIX
from webhook_router.routing import RoutingTable, parse_flavours, parse_label_list

DEFAULT_SELF_HOSTED_LABELS = "self-hosted,linux"
# GitHub never delivers more than 25 MB; a workflow_job payload is a few KB, so 1 MiB leaves
# ample room for long step lists while refusing junk early.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
GITHUB_MAX_BODY_BYTES = 25 * 1024 * 1024
# GitHub allows redelivering a delivery for 3 days: remember published jobs that long.
DEFAULT_DEDUP_WINDOW_SECONDS = 3 * 24 * 3600
# GitHub waits 10 s for an answer; broker work gets 3 s (two attempts of 1.5 s), the dedup store
# 0.5 s per call, so the worst case answer comes in about 4 s.
DEFAULT_PUBLISH_TIMEOUT_SECONDS = 3.0
MAX_PUBLISH_TIMEOUT_SECONDS = 8.0
DEFAULT_METRICS_PORT = 9102
BROKER_SCHEMES = frozenset(
    {"mongodb", "mongodb+srv", "amqp", "amqps", "pyamqp", "redis", "rediss"}
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# During a rotation the old and the new secret; a few more cost an HMAC each on a mismatch.
MAX_WEBHOOK_SECRETS = 5
UNSIGNED_OPT_OUT = "FLASK_ALLOW_UNSIGNED_WEBHOOKS"
_BOOLEANS = {"true": True, "false": False}
# An allow-list entry: an owner (organisation or user) or an owner/name repository.
_ALLOWED_ENTRY = re.compile(r"[a-z0-9_.-]{1,100}(/[a-z0-9_.-]{1,100})?")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,100}")
_LIST_SEPARATORS = re.compile(r"[\s,]+")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_Number = TypeVar("_Number", int, float)


def default_state_dir() -> Path:
    """Where local state goes without FLASK_STATE_DIR: a folder in the system's temp dir."""
    return Path(tempfile.gettempdir()) / "github-runner-webhook-router"


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know, validated.

    Attributes:
        routing: the routing table, default flavour and default labels.
        webhook_secrets: the secrets GitHub may sign bodies with (current first; more during a
            rotation); empty only with the unsigned opt-out, and then nothing is checked.
        allow_unsigned: the operator opted out of signature checking (FLASK_ALLOW_UNSIGNED_...).
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
        lifecycle_events: publish waiting/in_progress/completed of routed jobs to
            `<flavour>.events`.
        allowed_repositories: lower-case owners and `owner/name`s whose jobs are routed; empty
            allows every repository.
        allowed_networks: client networks webhooks are accepted from; empty allows any.
        client_address_header: header naming the client when behind a proxy (its last value).
        trusted_proxies: peers whose client address header is believed; empty: any peer.
    """

    routing: RoutingTable
    webhook_secrets: tuple[bytes, ...] = ()
    allow_unsigned: bool = False
    log_level: str = "INFO"
    broker_url: str | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    dedup_window_seconds: int = DEFAULT_DEDUP_WINDOW_SECONDS
    dedup_url: str | None = None
    publish_timeout_seconds: float = DEFAULT_PUBLISH_TIMEOUT_SECONDS
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_address: str = "0.0.0.0"  # noqa: S104 - Prometheus scrapes from another pod
    lifecycle_events: bool = False
    allowed_repositories: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()
    client_address_header: str | None = None
    trusted_proxies: tuple[Network, ...] = ()

    def allows_repository(self, full_name: str) -> bool:
        """Whether jobs of this `owner/name` repository are routed (case-insensitive)."""
        return repository_allowed(self.allowed_repositories, full_name)

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
        env = _set_values(environ)
        routing = routing_from_env(environ)
        secrets = _secrets(environ.get("FLASK_WEBHOOK_SECRET", ""))
        allow_unsigned = _boolean(env, UNSIGNED_OPT_OUT)
        if not secrets and not allow_unsigned:
            raise ConfigError(
                "FLASK_WEBHOOK_SECRET: not set; give the secret the GitHub webhook signs with"
                f" (or set {UNSIGNED_OPT_OUT}=true to accept unsigned webhooks, never in"
                " production)"
            )
        lifecycle_events = _boolean(env, "FLASK_LIFECYCLE_EVENTS")
        if lifecycle_events:
            _check_events_queues(routing)
        header = env.get("FLASK_CLIENT_ADDRESS_HEADER")
        if header is not None and not _HEADER_NAME.fullmatch(header):
            raise ConfigError("FLASK_CLIENT_ADDRESS_HEADER: expected a header name")
        return cls(
            routing=routing,
            webhook_secrets=secrets,
            allow_unsigned=allow_unsigned,
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
            lifecycle_events=lifecycle_events,
            allowed_repositories=allowed_repositories_from_env(environ),
            allowed_networks=_networks(env, "FLASK_ALLOWED_NETWORKS"),
            client_address_header=header,
            trusted_proxies=_networks(env, "FLASK_TRUSTED_PROXIES"),
        )


def repository_allowed(allowed: frozenset[str], full_name: str) -> bool:
    """Whether `owner/name` is in the allow-list, by itself or by its owner; empty allows all."""
    if not allowed:
        return True
    name = full_name.lower()
    return name in allowed or name.split("/", 1)[0] in allowed


def _set_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables with a value, stripped; empty values count as unset."""
    return {key: value.strip() for key, value in environ.items() if value.strip()}


def routing_from_env(environ: Mapping[str, str]) -> RoutingTable:
    """The routing table alone (FLASK_FLAVOURS, FLASK_DEFAULT_FLAVOUR, default labels).

    The explain command needs no secret or broker, so it reads only this.

    Raises:
        ConfigError: a variable is missing or invalid; the message names it.
    """
    env = _set_values(environ)
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
    return RoutingTable(
        flavours=flavours,
        default_flavour=default_flavour,
        default_labels=parse_label_list(
            environ.get("FLASK_DEFAULT_SELF_HOSTED_LABELS", DEFAULT_SELF_HOSTED_LABELS)
        ),
    )


def allowed_repositories_from_env(environ: Mapping[str, str]) -> frozenset[str]:
    """FLASK_ALLOWED_REPOSITORIES: lower-case owners and owner/names; empty allows all.

    Raises:
        ConfigError: an entry is neither `owner` nor `owner/name`.
    """
    return _allowed_repositories(_set_values(environ).get("FLASK_ALLOWED_REPOSITORIES"))


def _secrets(value: str) -> tuple[bytes, ...]:
    """One secret per line (current first); each used byte for byte, as GitHub does.

    Lines are split on newlines only (a secret may hold spaces or commas; GitHub's secret field
    holds no newline); a carriage return ending a line belongs to the line break; empty lines
    are skipped.
    """
    lines = [line.removesuffix("\r") for line in value.split("\n")]
    secrets = tuple(line.encode() for line in lines if line)
    if len(secrets) > MAX_WEBHOOK_SECRETS:
        raise ConfigError(
            f"FLASK_WEBHOOK_SECRET: at most {MAX_WEBHOOK_SECRETS} secrets (one per line)"
        )
    return secrets


def _boolean(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "false")
    if text.lower() not in _BOOLEANS:
        raise ConfigError(f"{name}: expected true or false")
    return _BOOLEANS[text.lower()]


def _check_events_queues(routing: RoutingTable) -> None:
    names = set(routing.names)
    for name in routing.names:
        if name + EVENTS_QUEUE_SUFFIX in names:
            raise ConfigError(
                f"FLASK_FLAVOURS: flavour {name + EVENTS_QUEUE_SUFFIX!r} is the lifecycle events"
                f" queue of flavour {name!r} (FLASK_LIFECYCLE_EVENTS=true); rename it"
            )


def _allowed_repositories(value: str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    entries = frozenset(entry.lower() for entry in _LIST_SEPARATORS.split(value) if entry)
    for entry in sorted(entries):
        if not _ALLOWED_ENTRY.fullmatch(entry):
            raise ConfigError(
                "FLASK_ALLOWED_REPOSITORIES: entries are 'owner' or 'owner/name',"
                " separated by commas or spaces"
            )
    return entries


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    value = env.get(name)
    if value is None:
        return ()
    networks: list[Network] = []
    for entry in (entry for entry in _LIST_SEPARATORS.split(value) if entry):
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ConfigError(
                f"{name}: {entry[:60]!r} is not a network in CIDR notation (like 192.30.252.0/22)"
            ) from exc
    return tuple(networks)


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
    if scheme == "filesystem":
        raise ConfigError(
            "MONGODB_DB_CONNECT_STRING: filesystem:// takes its folders from options, not from"
            " a URL; leave the variable unset for the embedded broker in FLASK_STATE_DIR"
        )
    if scheme not in BROKER_SCHEMES:
        raise ConfigError(
            "MONGODB_DB_CONNECT_STRING: expected a mongodb://, amqp:// or redis:// URL"
        )
    if not scheme.startswith("mongodb"):  # MongoDB URIs may list several hosts
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ConfigError("MONGODB_DB_CONNECT_STRING: the URL's port is not valid") from exc
        if not parts.hostname:
            raise ConfigError("MONGODB_DB_CONNECT_STRING: the URL names no host")
    try:  # imports the transport's client library now, not on the first webhook
        resolve_transport(scheme.split("+", 1)[0])
    except ImportError as exc:
        raise ConfigError(
            f"MONGODB_DB_CONNECT_STRING: the {scheme}:// transport cannot be loaded"
            f" ({exc.__class__.__name__}); install its client library"
        ) from exc
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
