"""Helpers to read typed, validated options out of the charm configuration."""

from __future__ import annotations

from collections.abc import Mapping

from twelve_factor.charm import InvalidConfigError
from twelve_factor.workload import WebserverConfig

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Config = Mapping[str, bool | int | float | str]


def string_option(config: Config, name: str) -> str | None:
    """A string option, None when unset or blank (so the workload sees no variable at all)."""
    value = config.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def log_level_option(config: Config, name: str = "log-level") -> str:
    """A log level, upper-cased.

    Raises:
        InvalidConfigError: not a standard level.
    """
    level = (string_option(config, name) or "INFO").upper()
    if level not in LOG_LEVELS:
        raise InvalidConfigError(f"{name} must be one of {', '.join(LOG_LEVELS)}")
    return level


def positive_int_option(config: Config, name: str, default: int) -> int:
    """An integer option that must be at least 1.

    Raises:
        InvalidConfigError: the value is zero or negative.
    """
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfigError(f"{name} must be a positive integer")
    return value


def webserver_options(config: Config) -> WebserverConfig:
    """Gunicorn settings from ``webserver-workers`` and ``webserver-timeout``.

    Raises:
        InvalidConfigError: a value is not a positive integer.
    """
    defaults = WebserverConfig()
    return WebserverConfig(
        workers=positive_int_option(config, "webserver-workers", defaults.workers),
        timeout=positive_int_option(config, "webserver-timeout", defaults.timeout),
    )
