"""Helpers to read typed, validated options out of the charm configuration."""

from __future__ import annotations

import math
from collections.abc import Mapping

from twelve_factor.charm import InvalidConfigError
from twelve_factor.workload import WORKER_CLASSES, WebserverConfig

Config = Mapping[str, bool | int | float | str]


def string_option(config: Config, name: str) -> str | None:
    """A string option, None when unset or blank (so the workload sees no variable at all)."""
    value = config.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def positive_int_option(config: Config, name: str, *, minimum: int = 1) -> int:
    """An integer option of at least ``minimum`` (charmcraft.yaml gives every one a default).

    Raises:
        InvalidConfigError: the value is missing, not an integer or too small.
    """
    value = config.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidConfigError(f"set {name} to an integer of at least {minimum}")
    return value


def webserver_options(config: Config, *, request_deadline: float) -> WebserverConfig:
    """Gunicorn's server model from paas-charm's ``webserver-*`` options.

    Args:
        config: the charm configuration.
        request_deadline: seconds within which the service answers a request itself (a 503
            with a message when its backend is slow); the worker timeout must be longer, or
            gunicorn would kill the worker first and the client would get no answer.

    Raises:
        InvalidConfigError: a value is out of range.
    """
    worker_class = string_option(config, "webserver-worker-class") or ""
    if worker_class not in WORKER_CLASSES:
        raise InvalidConfigError(
            f"set webserver-worker-class to one of {', '.join(WORKER_CLASSES)}"
        )
    return WebserverConfig(
        worker_class=worker_class,
        workers=positive_int_option(config, "webserver-workers"),
        threads=positive_int_option(config, "webserver-threads"),
        timeout=positive_int_option(
            config, "webserver-timeout", minimum=math.floor(request_deadline) + 1
        ),
        keepalive=positive_int_option(config, "webserver-keepalive"),
        worker_connections=positive_int_option(config, "webserver-worker-connections"),
    )
