"""Fetch and push in-process with libgit2 (https remotes, and SSH when configured so).

No other program is needed, but every transfer opens a new connection: over SSH that is a key
exchange and an authentication per fetch or push (``DJANGO_GIT_SSH_TRANSPORT=libgit2``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import pygit2
from cooperative import off_the_event_loop

from dns_backends.base import DnsBackendError, DnsBackendUnavailableError
from dns_backends.deadline import Deadline
from dns_backends.git.settings import GitSettings
from dns_backends.git.transport.cli import PushRefusedError, clean, refusal_reason

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_MS = 10_000
# libgit2's read timeout. Shorter than git's default receive.keepAlive (5 s): a remote that
# keeps a stalled push alive with keep-alive packets would otherwise hold libgit2 (and the
# request) past its deadline, in C, where nothing can stop it.
IO_TIMEOUT_MS = 4_000
# Over SSH a stalled push gives up only after about three read timeouts (measured here: 9.3 s
# with a 3 s timeout, 12.3 s with 4 s), so each timeout is at most a third of what is left.
READS_PER_STALL = 3
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
    """Credentials, strict host key checking, the server's verdicts, and the deadline.

    Every progress report checks the deadline: raising from a callback makes libgit2 abort the
    transfer, and pygit2 raises the same exception once it has.
    """

    def __init__(
        self, credentials: pygit2.KeypairFromMemory | None, deadline: Deadline, action: str
    ) -> None:
        super().__init__(credentials=credentials)
        self.refused: str | None = None
        self.remote_output: list[str] = []
        self._deadline = deadline
        self._action = action

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        """Abort a fetch that outlives the deadline."""
        self._deadline.check(self._action)

    def push_transfer_progress(
        self, objects_pushed: int, total_objects: int, bytes_pushed: int
    ) -> None:
        """Abort a push that outlives the deadline."""
        self._deadline.check(self._action)

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        """Accept only what libgit2 verified: known_hosts for SSH, the CA chain for https.

        pygit2's default accepts any SSH host key; this refuses unknown and changed ones.
        """
        return bool(valid)

    def sideband_progress(self, string: str) -> None:
        """Keep what the remote printed (a refusing hook's reason arrives here)."""
        self.remote_output.append(string)
        self._deadline.check(self._action)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        """Remember a ref the server refused (hook, lock, or a concurrent update)."""
        if message:
            self.refused = message


class Libgit2Network:
    """Transfers for a :class:`~dns_backends.git.repository.CloneStore` through libgit2."""

    def __init__(self, settings: GitSettings) -> None:
        self._remote = settings.remote
        self._ssh_key = settings.ssh_key
        self._known_hosts = settings.known_hosts
        self._home = settings.workdir / f"ssh-{settings.remote.slug}"

    def default_branch(self, repo: pygit2.Repository, deadline: Deadline) -> str:
        """Ask the remote which branch its HEAD names (only when none is configured)."""
        heads = self._network(
            "listing the git remote's branches",
            deadline,
            lambda callbacks: repo.remotes["origin"].list_heads(callbacks=callbacks),
        )
        names = {head.name for head in heads}
        for head in heads:
            target = head.symref_target
            if head.name == "HEAD" and target is not None and target in names:
                return str(target).removeprefix("refs/heads/")
        return DEFAULT_BRANCH

    def fetch(self, repo: pygit2.Repository, refspec: str, depth: int, deadline: Deadline) -> None:
        """Fetch ``refspec`` into the clone (``depth`` 0: all commits missing from it)."""
        self._network(
            "fetching from the git remote",
            deadline,
            lambda callbacks: repo.remotes["origin"].fetch(
                [refspec], callbacks=callbacks, depth=depth
            ),
        )

    def push(
        self,
        repo: pygit2.Repository,
        base: pygit2.Oid,
        commit: pygit2.Oid,
        ref: str,
        deadline: Deadline,
    ) -> None:
        """Push ``commit`` to ``ref`` without force (the server checks it is a fast-forward).

        Raises:
            PushRefusedError: the server refused the ref (a hook, a lock, a concurrent update).
            DnsBackendError: the host key or the SSH key was refused.
            DnsBackendUnavailableError: no verdict (rejected before sending, or cut off).
            DeadlineExceededError: the push did not finish in time.
        """

        def send(callbacks: _Callbacks) -> _Callbacks:
            repo.remotes["origin"].push([f"{commit}:{ref}"], callbacks=callbacks)
            return callbacks

        callbacks = self._network("pushing to the git remote", deadline, send)
        if callbacks.refused is not None:
            remote_lines = "".join(callbacks.remote_output).splitlines()
            stderr = "\n".join(f"remote: {line}" for line in remote_lines)
            reason = refusal_reason(f"[remote rejected] ({clean(callbacks.refused)})", stderr)
            logger.warning("%s refused the push: %s", self._remote.display, reason)
            raise PushRefusedError(reason)

    def close(self) -> None:
        """Nothing to release: libgit2 keeps no connection between transfers."""

    def _network(self, action: str, deadline: Deadline, operation: Callable[[_Callbacks], T]) -> T:
        """Run one network operation with this remote's credentials, known_hosts and deadline.

        libgit2's connection and read timeouts are process-wide settings: they are set here,
        for each operation (operations take turns), to what is left of the deadline. Under
        gevent the operation itself runs on a pool thread, so that the worker's other requests
        go on while it waits for the remote (see :mod:`..cooperative`).

        Raises:
            DnsBackendError: the host key or the SSH key was refused (retrying will not help).
            DnsBackendUnavailableError: any other failure (unreachable, timeout, broken pipe).
            DeadlineExceededError: the deadline ran out before or during the operation.
        """
        credentials = None
        if self._remote.kind == "ssh" and self._ssh_key is not None:
            credentials = pygit2.KeypairFromMemory(self._remote.user, None, self._ssh_key, "")
        callbacks = _Callbacks(credentials, deadline, action)
        if not _NETWORK_LOCK.acquire(timeout=deadline.check(action)):
            raise deadline.exceeded(action)
        try:
            left_ms = max(1, int(deadline.check(action) * 1000))
            pygit2.settings.server_connect_timeout = min(CONNECT_TIMEOUT_MS, left_ms)
            pygit2.settings.server_timeout = max(1, min(IO_TIMEOUT_MS, left_ms // READS_PER_STALL))
            previous_home = pygit2.settings.homedir
            if self._remote.kind == "ssh":
                self._write_known_hosts()
                pygit2.settings.homedir = str(self._home)
            try:
                return off_the_event_loop(operation, callbacks)
            except pygit2.GitError as exc:
                if deadline.remaining() <= 0:  # libgit2's timeout was what was left
                    logger.warning("%s stopped at the deadline: %s", action, exc)
                    raise deadline.exceeded(action) from exc
                raise self._translate(exc, action) from exc
            finally:
                if previous_home is not None:
                    pygit2.settings.homedir = previous_home
        finally:
            _NETWORK_LOCK.release()

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
