"""The dispatcher's exceptions: one root, so callers can tell ours from a library's."""

from __future__ import annotations


class DispatcherError(Exception):
    """Root of every error the dispatcher raises on purpose."""


class ConfigError(DispatcherError):
    """The configuration is invalid; the message names the variable and the problem."""
