"""The provider charm's configuration, read once into a frozen dataclass and validated."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from twelve_factor import InvalidConfigError, WebserverConfig
from twelve_factor.config import Config, log_level_option, string_option, webserver_options
from twelve_factor.environment import config_environment

PREFIX = "DJANGO_"
GIT_REPO_FORMAT = "git+ssh://<user>@<host>[:<port>]/<path>[@<branch>]"


@dataclass(frozen=True)
class GitHost:
    """Where the DNS repository is, for ``ssh-keyscan``."""

    host: str
    port: int | None


def parse_git_host(repo: str) -> GitHost:
    """Find the SSH host of the repository URL (URL form, or scp-like ``user@host:path``).

    Args:
        repo: the ``git-repo`` option.

    Returns:
        The host and, when given, the port.

    Raises:
        InvalidConfigError: the URL does not name an SSH host.
    """
    if "://" in repo:
        parts = urllib.parse.urlsplit(repo)
        if parts.scheme not in ("git+ssh", "ssh") or not parts.hostname:
            raise InvalidConfigError(f"git-repo must look like {GIT_REPO_FORMAT}")
        try:
            port = parts.port
        except ValueError as exc:
            raise InvalidConfigError(f"git-repo has an invalid port: {exc}") from exc
        return GitHost(host=parts.hostname, port=port)
    userinfo, at, rest = repo.partition("@")
    host, colon, path = rest.partition(":")
    if not at or not userinfo or not host or not colon or not path or "/" in host:
        raise InvalidConfigError(f"git-repo must look like {GIT_REPO_FORMAT}")
    return GitHost(host=host, port=None)


@dataclass(frozen=True)
class ProviderConfig:
    """Validated configuration of the lego httpreq provider."""

    git_repo: str
    git_host: GitHost
    git_ssh_key: str
    git_known_hosts: str | None
    log_level: str
    allowed_hosts: tuple[str, ...]
    webserver: WebserverConfig

    @classmethod
    def from_charm_config(cls, config: Config) -> ProviderConfig:
        """Read and validate the options.

        Raises:
            InvalidConfigError: an option is missing or invalid.
        """
        git_repo = string_option(config, "git-repo")
        git_ssh_key = string_option(config, "git-ssh-key")
        missing = [
            name
            for name, value in (("git-repo", git_repo), ("git-ssh-key", git_ssh_key))
            if value is None
        ]
        if git_repo is None or git_ssh_key is None:
            raise InvalidConfigError(f"set the {' and '.join(missing)} option(s)")
        if "PRIVATE KEY" not in git_ssh_key:
            raise InvalidConfigError("git-ssh-key must be an SSH private key (PEM/OpenSSH)")
        hosts = string_option(config, "allowed-hosts") or ""
        return cls(
            git_repo=git_repo,
            git_host=parse_git_host(git_repo),
            git_ssh_key=git_ssh_key,
            git_known_hosts=string_option(config, "git-known-hosts"),
            log_level=log_level_option(config),
            allowed_hosts=tuple(host.strip() for host in hosts.split(",") if host.strip()),
            webserver=webserver_options(config),
        )

    def environment(self) -> dict[str, str]:
        """``DJANGO_<OPTION>`` variables; the key and known hosts travel as files instead."""
        return config_environment(PREFIX, {"git-repo": self.git_repo, "log-level": self.log_level})
