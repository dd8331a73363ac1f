"""The provider charm's configuration, read once into a frozen dataclass.

The charm checks only what is its own business (a repository is set, the server model); what
the service accepts (the repository URL forms, the key format, log levels, host names) is
decided by the service itself, in the workload, before every (re)start (``config_check``).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from twelve_factor import InvalidConfigError, WebserverConfig
from twelve_factor.config import Config, string_option, webserver_options
from twelve_factor.environment import config_environment

PREFIX = "DJANGO_"
# The service answers within DJANGO_REQUEST_DEADLINE (its default: 20 s; the charm leaves it
# unset) with a 503 when the DNS repository is slow; gunicorn must not kill the worker first.
REQUEST_DEADLINE_SECONDS = 20.0
# The URL schemes the service reaches over SSH (the charm then needs the host's keys).
SSH_SCHEMES = ("git+ssh", "ssh+git", "ssh")


@dataclass(frozen=True)
class GitHost:
    """Where an SSH repository is, for ``ssh-keyscan``."""

    host: str
    port: int | None


def ssh_host(repo: str) -> GitHost | None:
    """The SSH host of a ``git+ssh://`` (or ``ssh://``) URL; None for any other form.

    A form the service refuses also gives None: the service's own check then says why.
    """
    parts = urllib.parse.urlsplit(repo)
    if parts.scheme.lower() not in SSH_SCHEMES or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return GitHost(host=parts.hostname, port=port)


def _janitor_max_age(config: Config) -> int:
    """``janitor-max-age``: an integer (the service decides which ages it accepts).

    Raises:
        InvalidConfigError: it is not an integer.
    """
    value = config.get("janitor-max-age")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfigError("set janitor-max-age to a number of seconds")
    return value


@dataclass(frozen=True)
class ProviderConfig:
    """Configuration of the lego httpreq provider, as the charm passes it on."""

    git_repo: str
    git_host: GitHost | None
    git_ssh_key: str | None
    git_known_hosts: str | None
    log_level: str | None
    allowed_hosts: tuple[str, ...]
    webserver: WebserverConfig
    janitor_max_age: int
    acmedns_zone: str | None = None

    @classmethod
    def from_charm_config(cls, config: Config) -> ProviderConfig:
        """Read the options.

        Raises:
            InvalidConfigError: the repository is not set, or a webserver option is invalid.
        """
        git_repo = string_option(config, "git-repo")
        if git_repo is None:
            raise InvalidConfigError(
                "set the git-repo option (the DNS zone repository, e.g. git+ssh://...)"
            )
        hosts = string_option(config, "allowed-hosts") or ""
        return cls(
            git_repo=git_repo,
            git_host=ssh_host(git_repo),
            git_ssh_key=string_option(config, "git-ssh-key"),
            git_known_hosts=string_option(config, "git-known-hosts"),
            log_level=string_option(config, "log-level"),
            allowed_hosts=tuple(host.strip() for host in hosts.split(",") if host.strip()),
            webserver=webserver_options(config, request_deadline=REQUEST_DEADLINE_SECONDS),
            janitor_max_age=_janitor_max_age(config),
            acmedns_zone=string_option(config, "acmedns-zone"),
        )

    def environment(self) -> dict[str, str]:
        """``DJANGO_<OPTION>`` variables; the key and known hosts travel as files instead."""
        return config_environment(
            PREFIX,
            {
                "git-repo": self.git_repo,
                "log-level": self.log_level,
                "acmedns-zone": self.acmedns_zone,
            },
        )
