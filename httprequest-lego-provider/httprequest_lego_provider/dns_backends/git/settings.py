"""The git backend's settings: ``DJANGO_GIT_*`` read once, validated, into dataclasses."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pygit2

from dns_backends.base import BackendConfigError

RemoteKind = Literal["local", "ssh", "https"]
SshTransport = Literal["openssh", "libgit2"]

DEFAULT_AUTHOR_NAME = "httprequest-lego-provider"
DEFAULT_AUTHOR_EMAIL = "httprequest-lego-provider@localhost"
DEFAULT_MAX_ATTEMPTS = 8
SSH_TRANSPORTS: tuple[SshTransport, ...] = ("openssh", "libgit2")
_SSH_SCHEMES = ("git+ssh", "ssh+git", "ssh")
_FORMS = "git+ssh://user@host[:port]/path, ssh://..., https://..., file:///path or /path"


@dataclass(frozen=True)
class RemoteSpec:
    """Where the zone repository lives, parsed from ``DJANGO_GIT_REPO``.

    ``url`` is what libgit2 connects to (a plain path for a local repository); ``branch`` is
    None when the remote's default branch should be used.
    """

    kind: RemoteKind
    url: str = field(repr=False)
    branch: str | None = None
    host: str = ""
    port: int | None = None
    user: str = ""
    path: str = ""

    @property
    def display(self) -> str:
        """Return the location without credentials, for messages and logs."""
        if self.kind == "local":
            return self.path
        port = f":{self.port}" if self.port else ""
        scheme = "ssh" if self.kind == "ssh" else "https"
        return f"{scheme}://{self.host}{port}{self.path}"

    @property
    def slug(self) -> str:
        """Return a file-name-safe key for this remote and branch (names its clone and lock)."""
        key = f"{self.url}@{self.branch or ''}".encode()
        return hashlib.sha256(key).hexdigest()[:16]


@dataclass(frozen=True)
class GitSettings:
    """Everything the git backend needs; secrets are kept out of ``repr``."""

    remote: RemoteSpec
    workdir: Path
    ssh_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = field(default=None, repr=False)
    author_name: str = DEFAULT_AUTHOR_NAME
    author_email: str = DEFAULT_AUTHOR_EMAIL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ssh_transport: SshTransport = "openssh"


def parse_repo_url(raw: str) -> RemoteSpec:
    """Parse one of the accepted ``DJANGO_GIT_REPO`` forms; ``@<branch>`` may end the path.

    Raises:
        ValueError: the form is not one of those accepted (the message lists them).
    """
    text = raw.strip()
    if text.startswith("/"):
        path, branch = _split_branch(text)
        return RemoteSpec(kind="local", url=path, branch=branch, path=path)
    scheme, separator, _ = text.partition("://")
    if not separator:
        raise ValueError(f"expected one of {_FORMS}")
    scheme = scheme.lower()
    if scheme == "file":
        return _parse_file_url(text)
    if scheme in _SSH_SCHEMES:
        return _parse_ssh_url(text)
    if scheme == "https":
        return _parse_https_url(text)
    raise ValueError(f"unsupported scheme {scheme!r}: expected one of {_FORMS}")


def _split_branch(path: str) -> tuple[str, str | None]:
    """Split ``/srv/dns.git@main`` into the path and the branch (None when absent)."""
    if "@" not in path:
        return path, None
    path, branch = path.rsplit("@", 1)
    if not pygit2.reference_is_valid_name(f"refs/heads/{branch}"):
        raise ValueError(f"{branch!r} is not a valid branch name")
    return path, branch


def _parse_file_url(text: str) -> RemoteSpec:
    path, branch = _split_branch(text[len("file://") :])
    if not path.startswith("/") or path == "/":
        raise ValueError("a file:// URL needs an absolute path (file:///srv/dns.git)")
    return RemoteSpec(kind="local", url=path, branch=branch, path=path)


def _parse_ssh_url(text: str) -> RemoteSpec:
    parts = urlsplit(text)
    path, branch = _split_branch(parts.path)
    if not parts.hostname or not path or path == "/":
        raise ValueError("an SSH URL needs a host and a path (git+ssh://git@host/dns.git)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("the SSH port is not a number between 1 and 65535") from exc
    user = parts.username or "git"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    url = f"ssh://{user}@{host}{f':{port}' if port else ''}{path}"
    return RemoteSpec(
        kind="ssh", url=url, branch=branch, host=parts.hostname, port=port, user=user, path=path
    )


def _parse_https_url(text: str) -> RemoteSpec:
    parts = urlsplit(text)
    path, branch = _split_branch(parts.path)
    if not parts.hostname or not path or path == "/":
        raise ValueError("an https URL needs a host and a path (https://host/dns.git)")
    url = parts._replace(path=path).geturl()
    return RemoteSpec(
        kind="https", url=url, branch=branch, host=parts.hostname, port=parts.port, path=path
    )


def settings_from_env(environ: Mapping[str, str], *, data_dir: Path | None = None) -> GitSettings:
    """Read and check the ``DJANGO_GIT_*`` variables.

    ``data_dir`` is the service's state directory (``DJANGO_DATA_DIR``, read by the service's
    environment); the work directory defaults to ``<data_dir>/git-workdir``.

    Raises:
        BackendConfigError: a variable is missing or invalid; the message names it.
    """
    raw_url = environ.get("DJANGO_GIT_REPO", "")
    if not raw_url.strip():
        raise BackendConfigError("DJANGO_GIT_REPO is not set (the zone repository's URL)")
    try:
        remote = parse_repo_url(raw_url)
    except ValueError as exc:
        raise BackendConfigError(f"DJANGO_GIT_REPO is invalid: {exc}") from None
    ssh_key = known_hosts = None
    if remote.kind == "ssh":
        ssh_key = _private_key(environ)
        known_hosts = _secret_or_file(environ, "DJANGO_GIT_KNOWN_HOSTS")
        if known_hosts is None or not known_hosts.strip():
            raise BackendConfigError(
                "DJANGO_GIT_KNOWN_HOSTS (or DJANGO_GIT_KNOWN_HOSTS_FILE) is required for an SSH "
                f"remote: the host key of {remote.host} must be known (ssh-keyscan it)"
            )
    ssh_transport = _ssh_transport(environ)
    workdir = _workdir(environ, data_dir)
    return GitSettings(
        remote=remote,
        workdir=workdir.resolve(),
        ssh_key=ssh_key,
        known_hosts=known_hosts,
        author_name=environ.get("DJANGO_GIT_AUTHOR_NAME") or DEFAULT_AUTHOR_NAME,
        author_email=environ.get("DJANGO_GIT_AUTHOR_EMAIL") or DEFAULT_AUTHOR_EMAIL,
        ssh_transport=ssh_transport,
    )


def _workdir(environ: Mapping[str, str], data_dir: Path | None) -> Path:
    """Return ``DJANGO_GIT_WORKDIR``, else the ``git-workdir`` folder of the data directory."""
    raw = environ.get("DJANGO_GIT_WORKDIR", "").strip()
    if raw:
        return Path(raw)
    if data_dir is None:
        raise BackendConfigError("DJANGO_GIT_WORKDIR is not set and there is no data directory")
    return data_dir / "git-workdir"


def _ssh_transport(environ: Mapping[str, str]) -> SshTransport:
    """Return how SSH remotes are reached: ``openssh`` (the default) or ``libgit2``."""
    raw = (environ.get("DJANGO_GIT_SSH_TRANSPORT") or "openssh").strip().lower()
    for transport in SSH_TRANSPORTS:
        if raw == transport:
            return transport
    raise BackendConfigError(
        f"DJANGO_GIT_SSH_TRANSPORT={raw!r} is not one of {', '.join(SSH_TRANSPORTS)}"
    )


def _private_key(environ: Mapping[str, str]) -> str:
    """Return the SSH private key, ending with a newline (libssh2 insists on it)."""
    key = _secret_or_file(environ, "DJANGO_GIT_SSH_KEY")
    if key is None or not key.strip():
        raise BackendConfigError(
            "DJANGO_GIT_SSH_KEY (or DJANGO_GIT_SSH_KEY_FILE) is required for an SSH remote"
        )
    if "PRIVATE KEY-----" not in key:
        raise BackendConfigError(
            "DJANGO_GIT_SSH_KEY does not hold a private key (expected OpenSSH or PEM format)"
        )
    return key.strip() + "\n"


def _secret_or_file(environ: Mapping[str, str], name: str) -> str | None:
    """Return ``name``'s content, or that of the file named by ``<name>_FILE``; never both."""
    content = environ.get(name) or None
    path = environ.get(f"{name}_FILE") or None
    if content is not None and path is not None:
        raise BackendConfigError(f"set only one of {name} and {name}_FILE")
    if path is None:
        return content
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendConfigError(f"{name}_FILE={path!r} cannot be read: {exc}") from None
