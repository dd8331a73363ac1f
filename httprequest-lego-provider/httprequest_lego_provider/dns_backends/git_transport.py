"""Where the git backend's commits go, and how a lost race with another writer is detected.

Two stores share one small interface (``tip``, ``refresh``, ``publish``):

- :class:`LocalStore` for a repository on this machine: objects are written straight into it
  and the branch is moved with compare-and-swap (git's own lock-file protocol). libgit2's
  ``file://`` push overwrites the remote branch without checking its old value, so two writers
  could silently lose each other's records through it; the compare-and-swap cannot.
- :class:`CloneStore` for SSH and https remotes: a persistent bare clone in the work directory
  (shallow, so start-up does not grow with history), fetched and pushed with libgit2 in-process.
  The receiving git checks the old value of the branch, so a concurrent writer's push makes ours
  fail rather than overwrite it.

Either way ``publish`` raises :class:`PushRejectedError` exactly when the branch moved since the
commit's parent was read, and the backend then re-applies its changes on the new tip.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import pygit2

from dns_backends.base import DnsBackendError, DnsBackendUnavailableError
from dns_backends.git_settings import GitSettings, RemoteSpec

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


class PushRejectedError(Exception):
    """The remote branch moved since the commit's parent was read: re-apply on the new tip."""


class Store(Protocol):
    """The repository that commits are built in, and the branch they are published to."""

    authoritative: bool  # True when tip() is always the published state (no cache to refresh)

    @property
    def repo(self) -> pygit2.Repository:
        """The repository whose object database new blobs, trees and commits are written to."""

    def tip(self) -> pygit2.Oid:
        """Return the last known tip of the branch (may be stale unless authoritative)."""

    def refresh(self) -> pygit2.Oid:
        """Return the tip as published right now (fetches from a network remote)."""

    def publish(self, base: pygit2.Oid, commit: pygit2.Oid) -> None:
        """Move the published branch from ``base`` to ``commit`` (a child of ``base``)."""

    def close(self) -> None:
        """Release the repository's files."""


def open_store(settings: GitSettings) -> Store:
    """Open the store for the configured remote (call with the work directory's lock held)."""
    if settings.remote.kind == "local":
        return LocalStore(settings.remote)
    return CloneStore(settings)


def _direct_target(ref: pygit2.Reference) -> pygit2.Oid:
    """Return the commit a branch points at (a branch is never a symbolic reference here)."""
    target = ref.target
    if not isinstance(target, pygit2.Oid):
        raise DnsBackendError(f"{ref.name} is a symbolic reference, expected a branch")
    return target


def _local_default_branch(repo: pygit2.Repository) -> str:
    """Return the branch HEAD names when it exists, else ``main``."""
    head = repo.references.get("HEAD")
    target = head.target if head is not None else None
    if isinstance(target, str) and repo.references.get(target) is not None:
        return target.removeprefix("refs/heads/")
    return DEFAULT_BRANCH


class LocalStore:
    """The zone repository is on this machine: commit into it and compare-and-swap the branch."""

    authoritative = True

    def __init__(self, remote: RemoteSpec) -> None:
        self._path = remote.path
        try:
            self._repo = pygit2.Repository(remote.path)
        except (pygit2.GitError, KeyError, OSError) as exc:
            raise DnsBackendError(f"no git repository at {remote.path}") from exc
        if not self._repo.is_bare:
            raise DnsBackendError(f"the git repository at {remote.path} must be bare")
        self._ref = f"refs/heads/{remote.branch or _local_default_branch(self._repo)}"

    @property
    def repo(self) -> pygit2.Repository:
        """The zone repository itself."""
        return self._repo

    def tip(self) -> pygit2.Oid:
        """Read the branch from disk: it is the published state."""
        if not os.path.isdir(self._path):
            raise DnsBackendError(f"the git repository at {self._path} has disappeared")
        ref = self._repo.references.get(self._ref)
        if ref is None:
            raise DnsBackendError(f"the git repository has no branch {self._ref[11:]!r}")
        return _direct_target(ref)

    def refresh(self) -> pygit2.Oid:
        """Same as :meth:`tip`: there is nothing to fetch."""
        return self.tip()

    def publish(self, base: pygit2.Oid, commit: pygit2.Oid) -> None:
        """Move the branch to ``commit`` only if it still points at ``base``.

        ``set_target`` passes the value read here as the expected old value, and the ref update
        happens under the ref's lock file, so a writer that got in between makes it fail.
        """
        ref = self._repo.references.get(self._ref)
        if ref is None or ref.target != base:
            raise PushRejectedError
        try:
            ref.set_target(commit, "httprequest-lego-provider")
        except (pygit2.GitError, OSError) as exc:  # a lock file is reported as OSError
            if self.tip() != base:
                raise PushRejectedError from exc
            logger.warning("cannot move %s in %s: %s", self._ref, self._path, exc)
            raise DnsBackendError("the git repository refused to move its branch") from exc

    def close(self) -> None:
        """Free libgit2's handles on the repository."""
        self._repo.free()


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials, strict host key checking, and the server's verdict on each pushed ref."""

    def __init__(self, credentials: pygit2.KeypairFromMemory | None) -> None:
        super().__init__(credentials=credentials)
        self.refused: str | None = None

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        """Accept only what libgit2 verified: known_hosts for SSH, the CA chain for https.

        pygit2's default accepts any SSH host key; this refuses unknown and changed ones.
        """
        return bool(valid)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        """Remember a ref the server refused (hook, lock, or a concurrent update)."""
        if message:
            self.refused = message


class CloneStore:
    """A persistent bare clone of a network remote, in the work directory.

    Processes on one host share it under the work directory's lock (taken by the caller), so
    a push by one also updates the remote-tracking branch the others build on.
    """

    authoritative = False

    def __init__(self, settings: GitSettings) -> None:
        self._remote = settings.remote
        self._ssh_key = settings.ssh_key
        self._known_hosts = settings.known_hosts
        self._home = settings.workdir / f"ssh-{settings.remote.slug}"
        pygit2.settings.server_connect_timeout = CONNECT_TIMEOUT_MS
        pygit2.settings.server_timeout = IO_TIMEOUT_MS
        self._repo = self._open_or_init(settings.workdir / f"clone-{settings.remote.slug}.git")
        self._origin = self._repo.remotes["origin"]
        self._branch = settings.remote.branch or self._remote_default_branch()
        self._tracking = f"refs/remotes/origin/{self._branch}"

    def _open_or_init(self, path: Path) -> pygit2.Repository:
        """Open the clone, or create it (a half-created one from a crash is started again)."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            repo = pygit2.Repository(str(path))
        except (pygit2.GitError, KeyError):
            shutil.rmtree(path, ignore_errors=True)
            repo = pygit2.init_repository(str(path), bare=True)
        if "origin" not in [remote.name for remote in repo.remotes]:
            repo.remotes.create("origin", self._remote.url)
        return repo

    @property
    def repo(self) -> pygit2.Repository:
        """The local clone."""
        return self._repo

    def tip(self) -> pygit2.Oid:
        """Return the remote-tracking branch, fetching it the first time."""
        ref = self._repo.references.get(self._tracking)
        if ref is None:
            return self.refresh()
        return _direct_target(ref)

    def refresh(self) -> pygit2.Oid:
        """Fetch the branch (only the tip commit the first time: history is never needed)."""
        depth = 0 if self._repo.references.get(self._tracking) is not None else 1
        refspec = f"+refs/heads/{self._branch}:{self._tracking}"
        with self._network("fetch") as callbacks:
            self._origin.fetch([refspec], callbacks=callbacks, depth=depth)
        ref = self._repo.references.get(self._tracking)
        if ref is None:
            raise DnsBackendError(f"the git remote has no branch {self._branch!r}")
        return _direct_target(ref)

    def publish(self, base: pygit2.Oid, commit: pygit2.Oid) -> None:
        """Push ``commit`` without force; find out from the remote what happened if it failed."""
        refused: str | None = None
        try:
            with self._network("push") as callbacks:
                self._origin.push([f"{commit}:refs/heads/{self._branch}"], callbacks=callbacks)
            refused = callbacks.refused
        except DnsBackendUnavailableError:
            pass  # rejected before sending (the branch moved) or cut off: ask the remote
        else:
            if refused is None:
                self._repo.references.create(self._tracking, commit, force=True)
                return
        self._reconcile(base, commit, refused)

    def _reconcile(self, base: pygit2.Oid, commit: pygit2.Oid, refused: str | None) -> None:
        """Ask the remote whether a failed push landed, lost a race, or was refused.

        libgit2's errors alone do not say which, and nothing may claim success on a guess.
        """
        now = self.refresh()
        if now == commit:
            return
        if now != base:
            raise PushRejectedError
        if refused is not None:
            logger.warning("%s refused the push: %s", self._remote.display, refused)
            raise DnsBackendError(f"the git remote refused the push: {refused[:120]}")
        raise DnsBackendUnavailableError("the push to the git remote failed, try again later")

    def close(self) -> None:
        """Free libgit2's handles on the clone."""
        self._repo.free()

    def _remote_default_branch(self) -> str:
        """Ask the remote which branch its HEAD names (only when none is configured)."""
        with self._network("list branches") as callbacks:
            heads = self._origin.list_heads(callbacks=callbacks)
        names = {head.name for head in heads}
        for head in heads:
            target = head.symref_target
            if head.name == "HEAD" and target is not None and target in names:
                return target.removeprefix("refs/heads/")
        return DEFAULT_BRANCH

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
