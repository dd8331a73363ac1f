"""Fetch and push in-process with libgit2 (https remotes, and SSH when configured so).

No other program is needed, but every transfer opens a new connection: over SSH that is a key
exchange and an authentication per fetch or push (``DJANGO_GIT_SSH_TRANSPORT=libgit2``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pygit2

from dns_backends.base import DnsBackendError, DnsBackendUnavailableError
from dns_backends.git_cli import PushRefusedError, clean, refusal_reason
from dns_backends.git_settings import GitSettings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 10_000
IO_TIMEOUT_MS = 30_000
DEFAULT_BRANCH = "main"

# libgit2 reads known_hosts from ``<home>/.ssh/known_hosts`` and the home directory is one
# process-wide setting, so network operations of this module take turns.
_NETWORK_LOCK = threading.Lock()


def _reset_network_lock() -> None:
    """Give a forked child a fresh lock: the parent's may have been held by another thread."""
    global _NETWORK_LOCK
    _NETWORK_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_network_lock)


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials, strict host key checking, and the server's verdict on each pushed ref."""

    def __init__(self, credentials: pygit2.KeypairFromMemory | None) -> None:
        super().__init__(credentials=credentials)
        self.refused: str | None = None
        self.remote_output: list[str] = []

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        """Accept only what libgit2 verified: known_hosts for SSH, the CA chain for https.

        pygit2's default accepts any SSH host key; this refuses unknown and changed ones.
        """
        return bool(valid)

    def sideband_progress(self, string: str) -> None:
        """Keep what the remote printed (a refusing hook's reason arrives here)."""
        self.remote_output.append(string)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        """Remember a ref the server refused (hook, lock, or a concurrent update)."""
        if message:
            self.refused = message


class Libgit2Network:
    """Transfers for a :class:`~dns_backends.git_transport.CloneStore` through libgit2."""

    def __init__(self, settings: GitSettings) -> None:
        self._remote = settings.remote
        self._ssh_key = settings.ssh_key
        self._known_hosts = settings.known_hosts
        self._home = settings.workdir / f"ssh-{settings.remote.slug}"
        pygit2.settings.server_connect_timeout = CONNECT_TIMEOUT_MS
        pygit2.settings.server_timeout = IO_TIMEOUT_MS

    def default_branch(self, repo: pygit2.Repository) -> str:
        """Ask the remote which branch its HEAD names (only when none is configured)."""
        with self._network("list branches") as callbacks:
            heads = repo.remotes["origin"].list_heads(callbacks=callbacks)
        names = {head.name for head in heads}
        for head in heads:
            target = head.symref_target
            if head.name == "HEAD" and target is not None and target in names:
                return str(target).removeprefix("refs/heads/")
        return DEFAULT_BRANCH

    def fetch(self, repo: pygit2.Repository, refspec: str, depth: int) -> None:
        """Fetch ``refspec`` into the clone (``depth`` 0: all commits missing from it)."""
        with self._network("fetch") as callbacks:
            repo.remotes["origin"].fetch([refspec], callbacks=callbacks, depth=depth)

    def push(
        self, repo: pygit2.Repository, base: pygit2.Oid, commit: pygit2.Oid, ref: str
    ) -> None:
        """Push ``commit`` to ``ref`` without force (the server checks it is a fast-forward).

        Raises:
            PushRefusedError: the server refused the ref (a hook, a lock, a concurrent update).
            DnsBackendError: the host key or the SSH key was refused.
            DnsBackendUnavailableError: no verdict (rejected before sending, or cut off).
        """
        with self._network("push") as callbacks:
            repo.remotes["origin"].push([f"{commit}:{ref}"], callbacks=callbacks)
        if callbacks.refused is not None:
            remote_lines = "".join(callbacks.remote_output).splitlines()
            stderr = "\n".join(f"remote: {line}" for line in remote_lines)
            reason = refusal_reason(f"[remote rejected] ({clean(callbacks.refused)})", stderr)
            logger.warning("%s refused the push: %s", self._remote.display, reason)
            raise PushRefusedError(reason)

    def close(self) -> None:
        """Nothing to release: libgit2 keeps no connection between transfers."""

    @contextmanager
    def _network(self, action: str) -> Iterator[_Callbacks]:
        """Run one network operation with this remote's credentials and known_hosts.

        Raises:
            DnsBackendError: the host key or the SSH key was refused (retrying will not help).
            DnsBackendUnavailableError: any other failure (unreachable, timeout, broken pipe).
        """
        credentials = None
        if self._remote.kind == "ssh" and self._ssh_key is not None:
            credentials = pygit2.KeypairFromMemory(self._remote.user, None, self._ssh_key, "")
        callbacks = _Callbacks(credentials)
        with _NETWORK_LOCK:
            previous_home = pygit2.settings.homedir
            if self._remote.kind == "ssh":
                self._write_known_hosts()
                pygit2.settings.homedir = str(self._home)
            try:
                yield callbacks
            except pygit2.GitError as exc:
                raise self._translate(exc, action) from exc
            finally:
                if previous_home is not None:
                    pygit2.settings.homedir = previous_home

    def _write_known_hosts(self) -> None:
        """Put the configured known_hosts where libgit2 looks for it (atomically)."""
        ssh_dir = self._home / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = ssh_dir / "known_hosts"
        content = self._known_hosts or ""
        if target.exists() and target.read_text(encoding="utf-8") == content:
            return
        partial = ssh_dir / f"known_hosts.{os.getpid()}.tmp"
        partial.write_text(content, encoding="utf-8")
        partial.replace(target)

    def _translate(self, exc: pygit2.GitError, action: str) -> DnsBackendError:
        """Turn a libgit2 failure into a short public error; the details go to the log only."""
        detail = str(exc).replace(self._remote.url, self._remote.display)
        logger.warning("git %s with %s failed: %s", action, self._remote.display, detail)
        host = self._remote.host
        if isinstance(exc, pygit2.CertificateError) and self._remote.kind == "ssh":
            return DnsBackendError(
                f"refusing to connect to {host}: its SSH host key is not in known_hosts or does "
                "not match it (check DJANGO_GIT_KNOWN_HOSTS)"
            )
        if isinstance(exc, pygit2.CertificateError):
            return DnsBackendError(f"refusing to connect to {host}: invalid TLS certificate")
        if "authenticat" in detail.lower():
            return DnsBackendError(
                f"{host} refused the SSH key for user {self._remote.user!r} "
                "(check DJANGO_GIT_SSH_KEY)"
            )
        return DnsBackendUnavailableError(f"the git remote {host} is unreachable ({action})")
