"""The repository commits are built in, the commits themselves, and where they are published.

Two stores share one small interface (``tip``, ``refresh``, ``publish``):

- :class:`LocalStore` for a repository on this machine. Without receive hooks, objects are
  written straight into it and the branch is moved with compare-and-swap (git's own lock-file
  protocol): about 4 ms. libgit2's ``file://`` push would overwrite the branch without checking
  its old value. When the repository has a hook that a push would run (``pre-receive``,
  ``update``, ``post-receive``, ``post-update``, ``reference-transaction``; looked for at every
  publish), commits are built in a staging repository that borrows the zone repository's
  objects and published with ``git push`` (``git receive-pack`` runs the hooks), so a DNS team
  that deploys from a hook is never silently skipped.
- :class:`CloneStore` for SSH and https remotes: a persistent bare clone in the work directory
  (shallow, so start-up does not grow with history), fetched and pushed through a
  :class:`~dns_backends.git.transport.Network`. The receiving git checks the old value of the
  branch, so a concurrent writer's push makes ours fail, not overwrite it.

Either way ``publish`` raises :class:`PushRejectedError` exactly when the branch moved since the
commit's parent was read, and the backend then re-applies its changes on the new tip
(:func:`plan` and :func:`write_commit` build the commit from the changes).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import pygit2

from dns_backends.base import DnsBackendError, DnsBackendUnavailableError, ZoneNotFoundError
from dns_backends.deadline import Deadline, DeadlineExceededError, default_deadline
from dns_backends.git.settings import GitSettings, RemoteSpec
from dns_backends.git.transport import Network, open_network
from dns_backends.git.transport.cli import (
    GitTransferError,
    PushRefusedError,
    PushRejectedError,
    for_log,
    git_environment,
    main_line,
    push_compare_and_swap,
)
from dns_backends.git.zonefile import add_value, remove_value, zone_file_name
from dns_backends.zones import find_zone

__all__ = [
    "Change",
    "CloneStore",
    "LocalStore",
    "Plan",
    "PushRejectedError",
    "Store",
    "TreeZones",
    "open_store",
    "plan",
    "write_commit",
    "zone_file",
]

logger = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
# How long another writer may hold the branch's lock file before we call the lock stale.
LOCK_WAIT_SECONDS = 2.0
# The hooks ``git receive-pack`` runs; any of them makes a local publish go through it.
RECEIVE_HOOKS = ("pre-receive", "update", "post-receive", "post-update", "reference-transaction")


class Store(Protocol):
    """The repository that commits are built in, and the branch they are published to."""

    authoritative: bool  # True when tip() is always the published state (no cache to refresh)

    @property
    def repo(self) -> pygit2.Repository:
        """The repository whose object database new blobs, trees and commits are written to."""

    def tip(self, deadline: Deadline) -> pygit2.Oid:
        """Return the last known tip of the branch (may be stale unless authoritative)."""

    def refresh(self, deadline: Deadline) -> pygit2.Oid:
        """Return the tip as published right now (fetches from a network remote)."""

    def publish(self, base: pygit2.Oid, commit: pygit2.Oid, deadline: Deadline) -> None:
        """Move the published branch from ``base`` to ``commit`` (a child of ``base``).

        The move is whole or nothing: when the deadline runs out (``DeadlineExceededError``)
        the branch is at ``base`` or at ``commit``, never anywhere else.
        """

    def close(self) -> None:
        """Release the repository's files (and any connection)."""


def open_store(settings: GitSettings, deadline: Deadline) -> Store:
    """Open the store for the configured remote (call with the work directory's lock held)."""
    if settings.remote.kind == "local":
        return LocalStore(settings.remote, settings.workdir)
    return CloneStore(settings, open_network(settings), deadline)


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
    """The zone repository is on this machine: publish into it, through its hooks if it has any."""

    authoritative = True

    def __init__(self, remote: RemoteSpec, workdir: Path) -> None:
        self._path = remote.path
        try:
            self._repo = pygit2.Repository(remote.path)
        except (pygit2.GitError, KeyError, OSError) as exc:
            raise DnsBackendError(f"no git repository at {remote.path}") from exc
        if not self._repo.is_bare:
            raise DnsBackendError(f"the git repository at {remote.path} must be bare")
        self._ref = f"refs/heads/{remote.branch or _local_default_branch(self._repo)}"
        self._staging_path = workdir / f"stage-{remote.slug}.git"
        self._staging: pygit2.Repository | None = None
        self._env = git_environment()

    @property
    def repo(self) -> pygit2.Repository:
        """The staging repository when a push must run hooks, else the zone repository itself."""
        return self._staging_repo() if self.receive_hooks() else self._repo

    def receive_hooks(self) -> list[str]:
        """Return the hooks a push to the repository would run (a config read and a few stats).

        Looked for at every publish, so that a hook installed while the service runs is run.
        """
        directory = os.path.join(self._repo.path, "hooks")
        try:
            configured = self._repo.config["core.hooksPath"]
        except (KeyError, pygit2.GitError):
            configured = None
        if isinstance(configured, str) and configured:
            directory = os.path.join(self._repo.path, os.path.expanduser(configured))
        return [name for name in RECEIVE_HOOKS if _executable(os.path.join(directory, name))]

    def tip(self, deadline: Deadline | None = None) -> pygit2.Oid:
        """Read the branch from disk: it is the published state."""
        if not os.path.isdir(self._path):
            raise DnsBackendError(f"the git repository at {self._path} has disappeared")
        ref = self._repo.references.get(self._ref)
        if ref is None:
            raise DnsBackendError(f"the git repository has no branch {self._ref[11:]!r}")
        return _direct_target(ref)

    def refresh(self, deadline: Deadline | None = None) -> pygit2.Oid:
        """Same as :meth:`tip`: there is nothing to fetch."""
        return self.tip()

    def publish(
        self, base: pygit2.Oid, commit: pygit2.Oid, deadline: Deadline | None = None
    ) -> None:
        """Move the branch to ``commit`` only if it still points at ``base``.

        With hooks (or a commit built while there were), ``git push`` does it, checking the
        old value. Without, ``set_target`` passes the value read here as the expected old
        value and updates the ref under its lock file, so a writer in between makes it fail.
        """
        deadline = deadline or default_deadline()
        if self.receive_hooks() or commit not in self._repo:
            self._push(base, commit, deadline)
            return
        ref = self._repo.references.get(self._ref)
        if ref is None or ref.target != base:
            raise PushRejectedError
        try:
            ref.set_target(commit, "httprequest-lego-provider")
        except (pygit2.GitError, OSError) as exc:  # a lock file is reported as OSError
            locked = "lock" in str(exc).lower()
            if self._lost_to_another_writer(base, locked=locked, deadline=deadline):
                raise PushRejectedError from exc
            logger.warning("cannot move %s in %s: %s", self._ref, self._path, exc)
            raise DnsBackendError("the git repository refused to move its branch") from exc

    def _lost_to_another_writer(
        self, base: pygit2.Oid, *, locked: bool, deadline: Deadline
    ) -> bool:
        """After a failed update: did another writer (on any host) hold or move the branch?

        Another writer holds ``<ref>.lock`` from taking it until renaming it over the ref, so
        our update can fail on the lock while the tip still reads ``base``; by the time we
        look, that writer may have finished (tip moved) or given up (lock gone). Either way we
        lost a race and retry. A lock that outlives the wait is stale; a failure that was not
        about the lock is reported as it is unless the tip moved meanwhile. The wait ends with
        the request's deadline if that comes first.
        """
        if not locked:
            return self.tip() != base
        lock = Path(self._path) / (self._ref + ".lock")
        stale_at = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            if self.tip() != base or not lock.exists():
                return True
            if time.monotonic() > stale_at:
                return False
            step = "waiting for another writer's lock on the git branch"
            time.sleep(min(0.005, deadline.check(step)))

    def _push(self, base: pygit2.Oid, commit: pygit2.Oid, deadline: Deadline) -> None:
        """Push from the staging repository: ``git receive-pack`` runs the hooks.

        A push that outlives the deadline is stopped with its ``receive-pack`` and hooks: the
        branch has then moved whole (the hook that was stopped ran after the update) or not
        at all.
        """
        staging = self._staging_repo()
        try:
            push_compare_and_swap(
                staging.path,
                self._path,
                self._ref,
                str(base),
                str(commit),
                env=self._env,
                deadline=deadline,
                step="pushing to the git repository (its hooks included)",
            )
        except PushRefusedError as exc:
            if self.tip() != base:
                raise PushRejectedError from exc
            logger.warning("%s refused the push: %s", self._path, exc.reason)
            raise DnsBackendError(f"the git repository refused the push: {exc.reason}") from exc
        except GitTransferError as exc:
            now = self.tip()
            if now == commit:
                return
            if now != base:
                raise PushRejectedError from exc
            detail = main_line(exc.result.stderr)
            logger.warning("git push to %s failed: %s", self._path, for_log(exc.result.stderr))
            raise DnsBackendError(f"pushing to the git repository failed: {detail}") from exc

    def _staging_repo(self) -> pygit2.Repository:
        """Open (creating it) the repository that borrows the zone repository's objects.

        Commits built there reach the zone repository only through ``git receive-pack``, so a
        refusing hook leaves nothing behind in it.
        """
        if self._staging is None:
            path = str(self._staging_path)
            try:
                repo = pygit2.Repository(path)
            except (pygit2.GitError, KeyError):
                shutil.rmtree(path, ignore_errors=True)  # half-created by a crash: start again
                repo = pygit2.init_repository(path, bare=True)
            info = Path(repo.path, "objects", "info")
            wanted = os.path.join(self._repo.path, "objects") + "\n"
            try:
                current = (info / "alternates").read_text()
            except OSError:
                current = ""
            if current != wanted:
                info.mkdir(parents=True, exist_ok=True)
                partial = info / f"alternates.{os.getpid()}.tmp"
                partial.write_text(wanted)
                partial.replace(info / "alternates")
                repo.free()
                repo = pygit2.Repository(path)  # libgit2 reads alternates when it opens
            self._staging = repo
        return self._staging

    def close(self) -> None:
        """Free libgit2's handles on the repositories."""
        self._repo.free()
        if self._staging is not None:
            self._staging.free()


def _executable(path: str) -> bool:
    """Tell whether git would run ``path`` as a hook (an executable file)."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


class CloneStore:
    """A persistent bare clone of a network remote, in the work directory.

    Processes on one host share it under the work directory's lock (taken by the caller), so
    a push by one also updates the remote-tracking branch the others build on.
    """

    authoritative = False

    def __init__(self, settings: GitSettings, network: Network, deadline: Deadline) -> None:
        self._remote = settings.remote
        self._network = network
        try:
            self._repo = _open_or_init(
                settings.workdir / f"clone-{settings.remote.slug}.git", settings.remote.url
            )
            self._branch = settings.remote.branch or network.default_branch(self._repo, deadline)
        except BaseException:
            network.close()
            raise
        self._ref = f"refs/heads/{self._branch}"
        self._tracking = f"refs/remotes/origin/{self._branch}"

    @property
    def repo(self) -> pygit2.Repository:
        """The local clone."""
        return self._repo

    def tip(self, deadline: Deadline) -> pygit2.Oid:
        """Return the remote-tracking branch, fetching it the first time."""
        ref = self._repo.references.get(self._tracking)
        if ref is None:
            return self.refresh(deadline)
        return _direct_target(ref)

    def refresh(self, deadline: Deadline) -> pygit2.Oid:
        """Fetch the branch (only the tip commit the first time: history is never needed)."""
        depth = 0 if self._repo.references.get(self._tracking) is not None else 1
        self._network.fetch(self._repo, f"+{self._ref}:{self._tracking}", depth, deadline)
        ref = self._repo.references.get(self._tracking)
        if ref is None:
            raise DnsBackendError(f"the git remote has no branch {self._branch!r}")
        return _direct_target(ref)

    def publish(self, base: pygit2.Oid, commit: pygit2.Oid, deadline: Deadline) -> None:
        """Push ``commit``; when the remote gave no clear verdict, ask it what happened.

        A push stopped by the deadline is not asked about (there is no time left): the remote
        moves its branch whole or not at all, and the next request's fetch learns which.
        """
        refused: str | None = None
        try:
            self._network.push(self._repo, base, commit, self._ref, deadline)
        except PushRefusedError as exc:
            refused = exc.reason
        except DeadlineExceededError:
            raise
        except DnsBackendUnavailableError:
            pass  # rejected before sending (the branch moved) or cut off: ask the remote
        else:
            self._repo.references.create(self._tracking, commit, force=True)
            return
        self._reconcile(base, commit, refused, deadline)

    def _reconcile(
        self, base: pygit2.Oid, commit: pygit2.Oid, refused: str | None, deadline: Deadline
    ) -> None:
        """Ask the remote whether a failed push landed, lost a race, or was refused.

        A refusal can be a lost race too (the branch moved while the remote held its lock);
        nothing may claim success on a guess.
        """
        now = self.refresh(deadline)
        if now == commit:
            return
        if now != base:
            raise PushRejectedError
        if refused is not None:
            raise DnsBackendError(f"the git remote refused the push: {refused}")
        raise DnsBackendUnavailableError("the push to the git remote failed, try again later")

    def close(self) -> None:
        """Close the network's connection and free libgit2's handles on the clone."""
        self._network.close()
        self._repo.free()


def _open_or_init(path: Path, url: str) -> pygit2.Repository:
    """Open the clone, or create it (a half-created one from a crash is started again)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        repo = pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError):
        shutil.rmtree(path, ignore_errors=True)
        repo = pygit2.init_repository(str(path), bare=True)
    if "origin" not in [remote.name for remote in repo.remotes]:
        repo.remotes.create("origin", url)
    return repo


@dataclass(frozen=True, eq=False)
class Change:
    """One request's change to one TXT value (compared by identity: two requests, two changes)."""

    action: Literal["Add", "Remove"]
    fqdn: str
    value: str

    @property
    def summary(self) -> str:
        """The change as a commit message line: ``Add <fqdn> record``."""
        return f"{self.action} {self.fqdn} record"


@dataclass
class Plan:
    """The changes of a batch applied to one tip: a new tree (None if nothing changed)."""

    tree: pygit2.Oid | None
    summaries: list[str]
    errors: dict[Change, DnsBackendError]


# Tree entry modes of a regular file: a zone file is one of these and nothing else.
REGULAR_FILE_MODES = (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE)
_ENTRY_KINDS = {
    pygit2.GIT_FILEMODE_LINK: "a symbolic link",
    pygit2.GIT_FILEMODE_TREE: "a directory",
    pygit2.GIT_FILEMODE_COMMIT: "a submodule",
}


class TreeZones:
    """The zones of a commit: every ``<zone>.domain`` regular file at its root.

    An entry of that name that is anything else (a symbolic link, a directory, a submodule) is
    refused rather than skipped: writing through a link would miss the real zone, and falling
    back to the parent zone would put the record where it is never served.
    """

    def __init__(self, tree: pygit2.Tree) -> None:
        self._tree = tree

    def __contains__(self, zone: object) -> bool:
        if not isinstance(zone, str) or zone_file_name(zone) not in self._tree:
            return False
        name = zone_file_name(zone)
        mode = self._tree[name].filemode
        if mode not in REGULAR_FILE_MODES:
            kind = _ENTRY_KINDS.get(mode, f"an entry of mode {mode:o}")
            logger.warning("refusing to use %s in the zone repository: it is %s", name, kind)
            raise DnsBackendError(
                f"the zone file {name} in the git repository is {kind}, not a regular file: "
                "refusing to write through it (ask the DNS team to fix the repository)"
            )
        return True


def plan(repo: pygit2.Repository, base: pygit2.Oid, batch: Sequence[Change]) -> Plan:
    """Apply the batch, in arrival order, to the zone files of ``base``'s tree."""
    tree = repo[base].peel(pygit2.Tree)
    zones = TreeZones(tree)
    originals: dict[str, bytes] = {}
    contents: dict[str, bytes] = {}
    summaries: list[str] = []
    errors: dict[Change, DnsBackendError] = {}
    for change in batch:
        try:
            zone = find_zone(change.fqdn, zones)
        except DnsBackendError as exc:  # the zone's file is not a regular file
            errors[change] = exc
            continue
        if zone is None:
            errors[change] = ZoneNotFoundError(change.fqdn)
            continue
        if zone not in contents:
            originals[zone] = contents[zone] = zone_file(repo, tree, zone)
        edit = add_value if change.action == "Add" else remove_value
        updated = edit(contents[zone], zone, change.fqdn, change.value)
        if updated != contents[zone]:
            contents[zone] = updated
            summaries.append(change.summary)
    changed = {zone: data for zone, data in contents.items() if data != originals[zone]}
    if not changed:
        return Plan(tree=None, summaries=[], errors=errors)
    builder = repo.TreeBuilder(tree)
    for zone, data in changed.items():
        name = zone_file_name(zone)
        builder.insert(name, repo.create_blob(data), tree[name].filemode)
    return Plan(tree=builder.write(), summaries=summaries, errors=errors)


def zone_file(repo: pygit2.Repository, tree: pygit2.Tree, zone: str) -> bytes:
    """Return the zone file's bytes as committed."""
    data: bytes = repo[tree[zone_file_name(zone)].id].peel(pygit2.Blob).data
    return data


def write_commit(
    repo: pygit2.Repository,
    base: pygit2.Oid,
    tree: pygit2.Oid,
    summaries: list[str],
    author: pygit2.Signature,
) -> pygit2.Oid:
    """Write the commit object of a planned tree (not yet on any branch)."""
    if len(summaries) == 1:
        message = f"{summaries[0]}\n"
    else:
        message = f"Update {len(summaries)} records\n\n" + "".join(f"{s}\n" for s in summaries)
    commit: pygit2.Oid = repo.create_commit(None, author, author, message, tree, [base])
    return commit
