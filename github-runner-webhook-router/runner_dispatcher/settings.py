"""Configuration: read from the environment once at start, validated, then passed explicitly."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from webhook_router.github_api import (
    APP_VARIABLES,
    DEFAULT_API_URL,
    Auth,
    CredentialsError,
    credentials_from_env,
    is_api_url,
    normalise_api_url,
)
from webhook_router.message import EVENTS_QUEUE_SUFFIX
from webhook_router.settings import BROKER_SCHEMES, DEFAULT_SELF_HOSTED_LABELS, default_state_dir

from runner_dispatcher.attempts import backoff_seconds
from runner_dispatcher.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ARCHITECTURES = ("x64", "arm64")
DEFAULT_HEALTH_PORT = 9104  # 9102 and 9103 are the router's metrics ports in the rock
# The last consumer's schedule (SPEC 2.2): 5 attempts, 60 s x 2^(n-1) capped at 30 minutes.
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_BASE_SECONDS = 60.0
DEFAULT_BACKOFF_MAX_SECONDS = 1800.0
# It polled the pickup 5 x 60 s; the same 5-minute bound in 10 s steps frees a consumer (and
# acknowledges the job) within 10 s of the runner taking it rather than within a minute.
DEFAULT_PICKUP_INTERVAL_SECONDS = 10.0
DEFAULT_PICKUP_POLLS = 30
# A consumer holds one job from the first look at GitHub until pickup: this many jobs at once.
DEFAULT_CONSUMERS = 16
DEFAULT_SPAWN_TIMEOUT_SECONDS = 600.0
DEFAULT_REDIS_VISIBILITY_TIMEOUT_SECONDS = 3600.0
# RabbitMQ's default consumer_timeout (rabbitmq.conf): an unacknowledged delivery older than
# this closes the channel and the message goes to another consumer.
DEFAULT_RABBITMQ_CONSUMER_TIMEOUT_SECONDS = 1800.0
# GitHub cancels a job still queued after 24 hours: past that no outage retry can help.
DEFAULT_GITHUB_OUTAGE_MAX_SECONDS = 86400.0
# Variables that hold the dispatcher's own secrets: never passed to a spawner.
CREDENTIAL_VARIABLES = frozenset(
    {"GITHUB_TOKEN", *APP_VARIABLES, "DISPATCHER_BROKER_URL", "MONGODB_DB_CONNECT_STRING"}
)
# Kombu's virtual transports (filesystem, MongoDB) poll; this bounds the added latency.
DEFAULT_POLL_SECONDS = 0.05
_FLAVOUR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_Number = TypeVar("_Number", int, float)


@dataclass(frozen=True)
class Settings:
    """Everything the dispatcher needs to know, validated.

    Attributes:
        flavours: the queues to consume (flavour names, as the router's routing table).
        supported_labels: labels the runners support, lowercased: the configured ones, the
            architecture; each flavour's own name is added per queue.
        spawn_command: the spawner executable and its arguments (run without a shell).
        broker_url: kombu URL of the broker; None selects the embedded filesystem broker.
        state_dir: the embedded broker's folder (shared with a router on the same machine).
        api_url: GitHub's API base URL (github.com or a GHES `https://HOST/api/v3`).
        auth: a token or GitHub App credentials; None calls the API unauthenticated.
        jit_config: ask GitHub for a just-in-time runner configuration for each spawn.
        offline_demo: never call GitHub; every job counts as queued, then taken (local demos).
        jit_scope: register JIT runners on the job's repository or its owner organisation.
        runner_group_id: the runner group of JIT runners.
        runner_labels: labels every JIT runner gets on top of the job's and the flavour's.
        consumers: concurrent consumers (threads, each with its own broker connection).
        max_attempts: attempts per job before it is rejected for good.
        backoff_base_seconds: the wait before the second attempt; doubles each attempt.
        backoff_max_seconds: the longest wait between attempts.
        pickup_interval_seconds: the wait between checks that a spawned runner took the job.
        pickup_polls: how many such checks before the job is requeued.
        spawn_timeout_seconds: a spawner still running after this is killed (a failure).
        spawn_pass_env: environment variables the spawner inherits (besides PATH).
        github_timeout_seconds: bound of each GitHub API call.
        broker_timeout_seconds: bound of each broker connect, read or write.
        redis_visibility_timeout_seconds: a Redis message unacknowledged this long is handed
            to another consumer (how a killed dispatcher's job comes back on Redis).
        rabbitmq_consumer_timeout_seconds: RabbitMQ's `consumer_timeout`; a message is never
            held this long (checked at start).
        github_outage_max_seconds: how long a job is requeued while GitHub cannot be asked
            before it is rejected (`github_unavailable_too_long`).
        poll_seconds: polling interval of kombu's virtual transports (filesystem, MongoDB).
        lifecycle_events: also consume `<flavour>.events` (the router's lifecycle events) and
            acknowledge without spawning a held job that an event says a runner took.
        health_port: port of /health and /metrics; 0 picks a free port.
        health_address: address the health server binds.
        log_level: a `logging` level name.
    """

    flavours: tuple[str, ...]
    spawn_command: tuple[str, ...]
    supported_labels: frozenset[str] = frozenset({"x64"})
    broker_url: str | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    api_url: str = DEFAULT_API_URL
    auth: Auth | None = None
    jit_config: bool = False
    offline_demo: bool = False
    jit_scope: str = "repository"
    runner_group_id: int = 1
    runner_labels: tuple[str, ...] = ("self-hosted", "linux")
    consumers: int = DEFAULT_CONSUMERS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base_seconds: float = DEFAULT_BACKOFF_BASE_SECONDS
    backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS
    pickup_interval_seconds: float = DEFAULT_PICKUP_INTERVAL_SECONDS
    pickup_polls: int = DEFAULT_PICKUP_POLLS
    spawn_timeout_seconds: float = DEFAULT_SPAWN_TIMEOUT_SECONDS
    spawn_pass_env: tuple[str, ...] = ()
    github_timeout_seconds: float = 10.0
    broker_timeout_seconds: float = 5.0
    redis_visibility_timeout_seconds: float = DEFAULT_REDIS_VISIBILITY_TIMEOUT_SECONDS
    rabbitmq_consumer_timeout_seconds: float = DEFAULT_RABBITMQ_CONSUMER_TIMEOUT_SECONDS
    github_outage_max_seconds: float = DEFAULT_GITHUB_OUTAGE_MAX_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    lifecycle_events: bool = False
    health_port: int = DEFAULT_HEALTH_PORT
    health_address: str = "127.0.0.1"
    log_level: str = "INFO"

    def labels_for(self, flavour: str) -> frozenset[str]:
        """The labels a runner of `flavour` supports: the configured ones and its name."""
        return self.supported_labels | {flavour.lower()}

    def longest_wait_seconds(self) -> float:
        """The longest backoff: before the last attempt (outage requeues wait no longer)."""
        return backoff_seconds(
            self.max_attempts - 1, self.backoff_base_seconds, self.backoff_max_seconds
        )

    def longest_hold_seconds(self) -> float:
        """The longest one message can stay unacknowledged while a consumer works on it.

        Every wait of one delivery: the backoff, the GitHub calls (installation token, job,
        JIT config, the pickup polls, deleting a failed spawn's JIT runner), the spawn, the
        pickup window, and the broker writes (journal, the confirmed republish, the ack).
        A message marked spawned or redelivered only waits a pickup window, which is less.
        """
        github_calls = self.pickup_polls + 4
        broker_calls = 3
        return (
            self.longest_wait_seconds()
            + self.spawn_timeout_seconds
            + self.pickup_interval_seconds * self.pickup_polls
            + self.github_timeout_seconds * github_calls
            + self.broker_timeout_seconds * broker_calls
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; empty values count as unset.

        Raises:
            ConfigError: a variable is missing or invalid; the message names it.
        """
        env = {key: value.strip() for key, value in environ.items() if value.strip()}
        try:
            auth = credentials_from_env(env)
        except CredentialsError as exc:
            raise ConfigError(exc.message) from exc
        api_url = env.get("DISPATCHER_GITHUB_API_URL") or env.get("GITHUB_API_URL")
        api_url = api_url or DEFAULT_API_URL
        if not is_api_url(api_url):
            raise ConfigError(
                "DISPATCHER_GITHUB_API_URL: expected https://api.github.com or a GitHub "
                "Enterprise Server URL such as https://github.example.com/api/v3"
            )
        # One spelling of the origin (lowercase host, no default port) for every comparison.
        api_url = normalise_api_url(api_url)
        jit_config = _boolean(env, "DISPATCHER_JIT_CONFIG", False)
        if jit_config and auth is None:
            raise ConfigError(
                "DISPATCHER_JIT_CONFIG: needs GITHUB_TOKEN or the GitHub App variables"
            )
        offline_demo = _boolean(env, "DISPATCHER_OFFLINE_DEMO", False)
        if offline_demo and jit_config:
            raise ConfigError("DISPATCHER_OFFLINE_DEMO: cannot be combined with JIT configs")
        flavours = _flavours(env)
        lifecycle_events = _boolean(env, "DISPATCHER_LIFECYCLE_EVENTS", False)
        if lifecycle_events:
            _check_events_queues(flavours)
        settings = cls(
            flavours=flavours,
            spawn_command=_command(env),
            supported_labels=_labels(env),
            broker_url=_broker_url(env),
            state_dir=Path(
                env.get("DISPATCHER_STATE_DIR")
                or env.get("FLASK_STATE_DIR")
                or default_state_dir()
            ),
            api_url=api_url,
            auth=auth,
            jit_config=jit_config,
            offline_demo=offline_demo,
            jit_scope=_choice(env, "DISPATCHER_JIT_SCOPE", ("repository", "organisation")),
            runner_group_id=_integer(env, "DISPATCHER_RUNNER_GROUP_ID", 1, 1, 2**53),
            runner_labels=_label_list(
                env.get("DISPATCHER_RUNNER_LABELS", DEFAULT_SELF_HOSTED_LABELS)
            ),
            consumers=_integer(env, "DISPATCHER_CONSUMERS", DEFAULT_CONSUMERS, 1, 256),
            max_attempts=_integer(env, "DISPATCHER_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, 1, 100),
            backoff_base_seconds=_seconds(
                env, "DISPATCHER_BACKOFF_BASE_SECONDS", DEFAULT_BACKOFF_BASE_SECONDS, 0, 86400
            ),
            backoff_max_seconds=_seconds(
                env, "DISPATCHER_BACKOFF_MAX_SECONDS", DEFAULT_BACKOFF_MAX_SECONDS, 0, 86400
            ),
            pickup_interval_seconds=_seconds(
                env, "DISPATCHER_PICKUP_INTERVAL_SECONDS", DEFAULT_PICKUP_INTERVAL_SECONDS, 0, 3600
            ),
            pickup_polls=_integer(env, "DISPATCHER_PICKUP_POLLS", DEFAULT_PICKUP_POLLS, 1, 1000),
            spawn_timeout_seconds=_seconds(
                env, "DISPATCHER_SPAWN_TIMEOUT_SECONDS", DEFAULT_SPAWN_TIMEOUT_SECONDS, 0.1, 86400
            ),
            spawn_pass_env=_pass_env(env),
            github_timeout_seconds=_seconds(env, "DISPATCHER_GITHUB_TIMEOUT_SECONDS", 10, 0.1, 60),
            broker_timeout_seconds=_seconds(env, "DISPATCHER_BROKER_TIMEOUT_SECONDS", 5, 0.1, 60),
            redis_visibility_timeout_seconds=_seconds(
                env,
                "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS",
                DEFAULT_REDIS_VISIBILITY_TIMEOUT_SECONDS,
                1,
                7 * 86400,
            ),
            rabbitmq_consumer_timeout_seconds=_seconds(
                env,
                "DISPATCHER_RABBITMQ_CONSUMER_TIMEOUT_SECONDS",
                DEFAULT_RABBITMQ_CONSUMER_TIMEOUT_SECONDS,
                1,
                7 * 86400,
            ),
            github_outage_max_seconds=_seconds(
                env,
                "DISPATCHER_GITHUB_OUTAGE_MAX_SECONDS",
                DEFAULT_GITHUB_OUTAGE_MAX_SECONDS,
                0,
                7 * 86400,
            ),
            poll_seconds=_seconds(env, "DISPATCHER_POLL_SECONDS", DEFAULT_POLL_SECONDS, 0.001, 10),
            lifecycle_events=lifecycle_events,
            health_port=_integer(env, "DISPATCHER_HEALTH_PORT", DEFAULT_HEALTH_PORT, 0, 65535),
            health_address=env.get("DISPATCHER_HEALTH_ADDRESS", "127.0.0.1"),
            log_level=_choice(env, "DISPATCHER_LOG_LEVEL", LOG_LEVELS, default="INFO", upper=True),
        )
        _check_visibility(settings)
        return settings


def _check_visibility(settings: Settings) -> None:
    """A message held past Redis's visibility timeout or RabbitMQ's consumer_timeout runs twice.

    The broker hands it to another consumer while the first still works on it.
    """
    scheme = (settings.broker_url or "").split("://", 1)[0].lower()
    hold = settings.longest_hold_seconds()
    redis = (
        "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS",
        settings.redis_visibility_timeout_seconds,
    )
    amqp = (
        "DISPATCHER_RABBITMQ_CONSUMER_TIMEOUT_SECONDS",
        settings.rabbitmq_consumer_timeout_seconds,
    )
    limits = {"redis": redis, "rediss": redis, "amqp": amqp, "amqps": amqp, "pyamqp": amqp}
    if scheme not in limits:
        return
    variable, limit = limits[scheme]
    if limit <= hold:
        raise ConfigError(
            f"{variable}: must exceed {hold:g} s, the longest a job is held (longest backoff "
            "+ spawn timeout + pickup window + GitHub and broker call timeouts); lower "
            "DISPATCHER_MAX_ATTEMPTS, DISPATCHER_BACKOFF_MAX_SECONDS, the spawn timeout or "
            "the pickup window, or raise the broker's limit and this variable"
        )


def _flavours(env: Mapping[str, str]) -> tuple[str, ...]:
    text = env.get("DISPATCHER_FLAVOURS")
    if text is None:
        raise ConfigError("DISPATCHER_FLAVOURS: not set; give the queues to consume, e.g. small")
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    bad = [name for name in names if not _FLAVOUR.fullmatch(name)]
    if not names or bad:
        raise ConfigError(
            "DISPATCHER_FLAVOURS: expected comma-separated flavour names (letters, digits, _.-)"
        )
    return names


def _check_events_queues(flavours: tuple[str, ...]) -> None:
    """Refuse a flavour named like another's events queue: it would be consumed as both."""
    for name in flavours:
        if name + EVENTS_QUEUE_SUFFIX in flavours:
            raise ConfigError(
                f"DISPATCHER_FLAVOURS: {name + EVENTS_QUEUE_SUFFIX!r} is the lifecycle events "
                f"queue of flavour {name!r} (DISPATCHER_LIFECYCLE_EVENTS=true); leave it out"
            )


def _command(env: Mapping[str, str]) -> tuple[str, ...]:
    """The spawner's argv: a JSON array of strings, or words split as a POSIX shell would.

    Splitting is only tokenising: the command runs without a shell, so nothing is expanded.
    """
    text = env.get("DISPATCHER_SPAWN_COMMAND")
    if text is None:
        raise ConfigError(
            "DISPATCHER_SPAWN_COMMAND: not set; give the spawner executable and its arguments"
        )
    try:
        argv = json.loads(text) if text.startswith("[") else shlex.split(text)
    except ValueError as exc:
        raise ConfigError(
            "DISPATCHER_SPAWN_COMMAND: not a JSON array of strings nor a command line"
        ) from exc
    if not argv or not all(isinstance(word, str) and word for word in argv):
        raise ConfigError("DISPATCHER_SPAWN_COMMAND: expected a non-empty list of arguments")
    return tuple(argv)


def _label_list(text: str) -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(label.strip().lower() for label in text.split(",") if label.strip())
    )


def _labels(env: Mapping[str, str]) -> frozenset[str]:
    architecture = _choice(env, "DISPATCHER_ARCHITECTURE", ARCHITECTURES)
    return frozenset({*_label_list(env.get("DISPATCHER_LABELS", "")), architecture})


def _broker_url(env: Mapping[str, str]) -> str | None:
    """DISPATCHER_BROKER_URL, else the router's variable; never echoed (it holds secrets)."""
    for name in ("DISPATCHER_BROKER_URL", "MONGODB_DB_CONNECT_STRING"):
        value = env.get(name)
        if value is None:
            continue
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in BROKER_SCHEMES:
            raise ConfigError(f"{name}: expected a mongodb://, amqp:// or redis:// URL")
        return None if scheme == "filesystem" else value
    return None


def _pass_env(env: Mapping[str, str]) -> tuple[str, ...]:
    names = tuple(
        name.strip()
        for name in env.get("DISPATCHER_SPAWN_PASS_ENV", "").split(",")
        if name.strip()
    )
    if not all(_ENV_NAME.fullmatch(name) for name in names):
        raise ConfigError("DISPATCHER_SPAWN_PASS_ENV: expected comma-separated variable names")
    secrets = sorted(set(names) & CREDENTIAL_VARIABLES)
    if secrets:
        raise ConfigError(
            f"DISPATCHER_SPAWN_PASS_ENV: {', '.join(secrets)} hold the dispatcher's "
            "credentials, which never reach a spawner"
        )
    return names


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name)
    if text is None:
        return default
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: {text!r} is not true or false")


def _choice(
    env: Mapping[str, str],
    name: str,
    choices: tuple[str, ...],
    *,
    default: str | None = None,
    upper: bool = False,
) -> str:
    """One of `choices` (the first when unset, or `default`), case-insensitively."""
    text = env.get(name, default or choices[0])
    value = text.upper() if upper else text.lower()
    if value not in choices:
        raise ConfigError(f"{name}: {text!r} is not one of {', '.join(choices)}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return _bounded(env, name, default, low, high, int, "an integer")


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    return _bounded(
        env, name, float(default), float(low), float(high), float, "a number of seconds"
    )


def _bounded(
    env: Mapping[str, str],
    name: str,
    default: _Number,
    low: _Number,
    high: _Number,
    parse: Callable[[str], _Number],
    kind: str,
) -> _Number:
    """Read variable `name` with `parse` (`default` when unset) within `low`..`high`."""
    text = env.get(name)
    if text is None:
        return default
    try:
        value = parse(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {text!r} is not {kind}") from exc
    if not low <= value <= high or value != value:  # NaN compares false to everything
        raise ConfigError(f"{name}: {value} is outside {low:g}..{high:g}")
    return value
