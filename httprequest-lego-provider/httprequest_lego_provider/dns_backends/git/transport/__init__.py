"""How the git backend's fetches and pushes reach a network remote.

Two networks share the :class:`Network` interface: :mod:`.openssh` (the ``git`` command over one
reused OpenSSH connection, the default for SSH) and :mod:`.libgit2` (in-process, https and
``DJANGO_GIT_SSH_TRANSPORT=libgit2``). :mod:`.cli` runs the ``git`` command for both the
OpenSSH network and a local repository with hooks, and defines the verdicts of a push.
"""

from __future__ import annotations

from typing import Protocol

import pygit2

from dns_backends.deadline import Deadline
from dns_backends.git.settings import GitSettings
from dns_backends.git.transport.cli import PushRefusedError, PushRejectedError
from dns_backends.git.transport.libgit2 import Libgit2Network
from dns_backends.git.transport.openssh import OpenSshNetwork

__all__ = ["Network", "PushRefusedError", "PushRejectedError", "open_network"]


class Network(Protocol):
    """How a clone talks to its remote; every call ends by the request's deadline."""

    def default_branch(self, repo: pygit2.Repository, deadline: Deadline) -> str:
        """Return the branch the remote's HEAD names."""

    def fetch(self, repo: pygit2.Repository, refspec: str, depth: int, deadline: Deadline) -> None:
        """Fetch ``refspec`` into ``repo``, ``depth`` commits deep (0: all that are missing)."""

    def push(
        self,
        repo: pygit2.Repository,
        base: pygit2.Oid,
        commit: pygit2.Oid,
        ref: str,
        deadline: Deadline,
    ) -> None:
        """Push ``commit`` to ``ref``; raise ``PushRejectedError``/``PushRefusedError``/etc."""

    def close(self) -> None:
        """Release connections and credentials."""


def open_network(settings: GitSettings) -> Network:
    """Return the network configured for a remote reached over SSH or https."""
    if settings.remote.kind == "ssh" and settings.ssh_transport == "openssh":
        return OpenSshNetwork(settings)
    return Libgit2Network(settings)
