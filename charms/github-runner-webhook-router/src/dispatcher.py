"""The optional runner dispatcher: a worker beside the router that consumes its flavour queues.

The router's rock ships ``runner_dispatcher`` (its README: the ``DISPATCHER_*`` variables). When
``dispatcher-spawn-command`` is set the charm runs it as the Pebble service ``dispatcher-worker``
(paas-charm's worker convention), reading the same MongoDB queues as the router. It is optional
because its spawner must be able to start runners from inside the router's pod (see the charms
README), which only some spawners can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ops
import yaml
from twelve_factor import InvalidConfigError, Worker, WorkloadError
from twelve_factor.config import Config, string_option
from twelve_factor.workload import PYTHON

SERVICE = "dispatcher-worker"
MODULE = "runner_dispatcher"
# 9102 is the rock's statsd exporter, 9103 the router's own metrics (app_metrics_port).
HEALTH_PORT = 9104
HEALTH_URL = f"http://127.0.0.1:{HEALTH_PORT}/health"
# SIGTERM lets running spawns finish, but a replan waits for the stop (ops gives it 30 s). A
# dispatcher killed mid-spawn loses nothing: its message comes back (at least once delivery).
KILL_DELAY = "20s"
BROKER_VARIABLE = "MONGODB_DB_CONNECT_STRING"
TOKEN_KEY = "token"  # noqa: S105 (a key name: the one redeliver-failed-webhooks reads too)


def github_token(model: ops.Model, secret_id: str) -> str:
    """The token in the user secret ``dispatcher-github-token`` names.

    Raises:
        WorkloadError: the secret is not granted, not found, or has no ``token`` key.
    """
    try:
        content = model.get_secret(id=secret_id).get_content(refresh=True)
    except ops.SecretNotFoundError as exc:
        raise WorkloadError(
            f"dispatcher-github-token: secret not found; grant it with "
            f"'juju grant-secret {secret_id} {model.app.name}'"
        ) from exc
    except ops.ModelError as exc:
        raise WorkloadError(
            f"dispatcher-github-token: cannot read the secret (is it granted to {model.app.name}?)"
        ) from exc
    token = content.get(TOKEN_KEY, "").strip()
    if not token:
        raise WorkloadError(f"dispatcher-github-token: the secret has no '{TOKEN_KEY}' key")
    return token


def flavour_names(table: str) -> tuple[str, ...]:
    """The flavours of the routing table (its queues), in order; empty when it is not a table.

    A table the router refuses is reported by the router's own check, with its message.
    """
    try:
        items = yaml.safe_load(table)
    except yaml.YAMLError:
        return ()
    if not isinstance(items, list):
        return ()
    names = [name for item in items if isinstance(item, dict) for name in item]
    return tuple(dict.fromkeys(str(name) for name in names))


@dataclass(frozen=True)
class DispatcherConfig:
    """The dispatcher options, as the charm passes them on (the service validates them)."""

    spawn_command: str
    flavours: str
    labels: str | None
    consumers: int
    github_token_secret: str | None = None
    # The router's lifecycle-events option: the dispatcher then consumes the events too.
    lifecycle_events: bool = False

    @classmethod
    def from_charm_config(cls, config: Config, table: str) -> DispatcherConfig | None:
        """The dispatcher's options; None when ``dispatcher-spawn-command`` is empty.

        Raises:
            InvalidConfigError: ``dispatcher-consumers`` is not an integer.
        """
        spawn_command = string_option(config, "dispatcher-spawn-command")
        flavours = string_option(config, "dispatcher-flavours")
        labels = string_option(config, "dispatcher-labels")
        consumers = config.get("dispatcher-consumers", 16)
        token_secret = string_option(config, "dispatcher-github-token")
        if spawn_command is None:
            return None
        if isinstance(consumers, bool) or not isinstance(consumers, int):
            raise InvalidConfigError("set dispatcher-consumers to an integer")
        return cls(
            spawn_command=spawn_command,
            flavours=flavours if flavours is not None else ",".join(flavour_names(table)),
            labels=labels,
            consumers=consumers,
            github_token_secret=token_secret,
            lifecycle_events=bool(config.get("lifecycle-events", False)),
        )

    def worker(
        self, environment: Mapping[str, str], log_level: str | None, github_token: str | None
    ) -> Worker:
        """The ``dispatcher-worker`` service, on the router's broker."""
        variables = {
            "DISPATCHER_SPAWN_COMMAND": self.spawn_command,
            "DISPATCHER_FLAVOURS": self.flavours,
            "DISPATCHER_CONSUMERS": str(self.consumers),
            "DISPATCHER_HEALTH_PORT": str(HEALTH_PORT),
        }
        if self.labels is not None:
            variables["DISPATCHER_LABELS"] = self.labels
        if self.lifecycle_events:
            # The events the router publishes spare spawns (and GitHub calls) for taken jobs.
            variables["DISPATCHER_LIFECYCLE_EVENTS"] = "true"
        if log_level is not None:
            variables["DISPATCHER_LOG_LEVEL"] = log_level
        if github_token is not None:
            variables["GITHUB_TOKEN"] = github_token
        broker = environment.get(BROKER_VARIABLE)
        if broker:
            variables["DISPATCHER_BROKER_URL"] = broker
        return Worker(
            name=SERVICE,
            command=(PYTHON, "-m", MODULE),
            environment=variables,
            health_url=HEALTH_URL,
            kill_delay=KILL_DELAY,
        )
