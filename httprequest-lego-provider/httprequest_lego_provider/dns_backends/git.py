"""The git backend: challenge records committed to the DNS team's zone repository.

Writes are group-committed. A request enqueues its change and waits; one thread at a time
(the leader) takes every pending change, applies them to the latest known tip, commits once and
publishes. Each waiter returns only once the commit holding its change is published. When
another writer got in first, the leader re-reads the tip, re-applies the changes and tries again
(a bounded number of times, with jittered backoff). Processes on one host take turns through a
lock file in the work directory; hosts through git's own check of the branch's old value.
Nothing holding libgit2 handles survives a fork: each process opens its own on first use.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import pygit2

from dns_backends.base import DnsBackendError, DnsBackendUnavailableError, ZoneNotFoundError
from dns_backends.git_settings import GitSettings, settings_from_env
from dns_backends.git_transport import PushRejectedError, Store, open_store
from dns_backends.git_zonefile import (
    add_value,
    normalise,
    remove_value,
    values_at,
    zone_file_name,
)
from dns_backends.zones import find_zone

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.5


@dataclass(eq=False)
class _Change:
    """One request's change, and what became of it (filled in by the leader)."""

    action: Literal["Add", "Remove"]
    fqdn: str
    value: str
    done: bool = False
    error: DnsBackendError | None = None

    @property
    def summary(self) -> str:
        return f"{self.action} {self.fqdn} record"


@dataclass
class _Plan:
    """The changes of a batch applied to one tip: a new tree (None if nothing changed)."""

    tree: pygit2.Oid | None
    summaries: list[str]
    errors: dict[_Change, DnsBackendError]


@dataclass(eq=False)
class _ProcessState:
    """What one process owns: its queue, its repository handles and its lock file."""

    pid: int
    lock_fd: int
    store: Store | None = None
    pending: list[_Change] = field(default_factory=list)
    leading: bool = False
    wakeup: threading.Condition = field(default_factory=threading.Condition)
    git_lock: threading.Lock = field(default_factory=threading.Lock)


class _TreeZones:
    """The zones of a commit: every ``<zone>.domain`` file at its root."""

    def __init__(self, tree: pygit2.Tree) -> None:
        self._tree = tree

    def __contains__(self, zone: object) -> bool:
        if not isinstance(zone, str) or zone_file_name(zone) not in self._tree:
            return False
        return self._tree[zone_file_name(zone)].type_str == "blob"


class GitBackend:
    """Publish TXT records by committing to a git repository of bind zone files."""

    def __init__(self, settings: GitSettings) -> None:
        self._settings = settings
        self._state: _ProcessState | None = None
        self._state_lock = threading.Lock()
        forget = weakref.WeakMethod(self._forget_parent_state)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(forget))

    def present(self, fqdn: str, value: str) -> None:
        """Add the TXT value at ``fqdn`` beside any others; return once it is pushed."""
        self._submit(_Change("Add", *normalise(fqdn, value)))

    def cleanup(self, fqdn: str, value: str) -> None:
        """Remove exactly this TXT value at ``fqdn``; return once the removal is pushed."""
        self._submit(_Change("Remove", *normalise(fqdn, value)))

    def values(self, fqdn: str) -> set[str]:
        """Return the values published at ``fqdn`` in the remote's current state."""
        name = fqdn.lower().removesuffix(".")
        state = self._process_state()
        with state.git_lock, self._host_lock(state):
            store = self._store(state)
            tree = store.repo[store.refresh()].peel(pygit2.Tree)
            zone = find_zone(name, _TreeZones(tree))
            if zone is None:
                return set()
            return values_at(_blob(store.repo, tree, zone), zone, name)

    def close(self) -> None:
        """Release this process's repository handles, SSH connection and lock file."""
        with self._state_lock:
            state, self._state = self._state, None
        if state is not None and state.pid == os.getpid():
            if state.store is not None:
                state.store.close()
            os.close(state.lock_fd)

    # -- per-process state -------------------------------------------------------------------

    def _process_state(self) -> _ProcessState:
        state = self._state
        if state is not None and state.pid == os.getpid():
            return state
        with self._state_lock:
            if self._state is None or self._state.pid != os.getpid():
                self._state = _ProcessState(pid=os.getpid(), lock_fd=self._open_lock_file())
            return self._state

    def _open_lock_file(self) -> int:
        """Open (creating the work directory) the lock file shared by this host's processes."""
        workdir = self._settings.workdir
        try:
            workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock_path = workdir / f"{self._settings.remote.slug}.lock"
            return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            logger.error("cannot use the git work directory %s: %s", workdir, exc)
            raise DnsBackendError(
                f"the git work directory {workdir} is not usable (check DJANGO_GIT_WORKDIR)"
            ) from exc

    def _forget_parent_state(self) -> None:
        """In a forked child, drop the parent's handles and locks without using them."""
        self._state_lock = threading.Lock()
        if self._state is not None:
            os.close(self._state.lock_fd)
            self._state = None

    def _store(self, state: _ProcessState) -> Store:
        """Open the store on first use (callers hold the git lock and the host lock)."""
        if state.store is None:
            state.store = open_store(self._settings)
        return state.store

    @contextmanager
    def _host_lock(self, state: _ProcessState) -> Iterator[None]:
        """Take turns with the other processes that share this work directory."""
        fcntl.flock(state.lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(state.lock_fd, fcntl.LOCK_UN)

    # -- group commit ------------------------------------------------------------------------

    def _submit(self, change: _Change) -> None:
        """Queue ``change``, lead a batch when no other thread is, and wait for its outcome."""
        state = self._process_state()
        with state.wakeup:
            state.pending.append(change)
            while not change.done:
                if state.leading:
                    state.wakeup.wait()
                    continue
                state.leading = True
                batch, state.pending = state.pending, []
                state.wakeup.release()
                try:
                    self._lead(state, batch)
                finally:
                    state.wakeup.acquire()
                    state.leading = False
                    state.wakeup.notify_all()
        if change.error is not None:
            raise change.error

    def _lead(self, state: _ProcessState, batch: list[_Change]) -> None:
        """Publish one batch and record each change's outcome; never leave a waiter hanging."""
        errors: dict[_Change, DnsBackendError] = dict.fromkeys(batch, DnsBackendError())
        try:
            with state.git_lock, self._host_lock(state):
                errors = self._publish_batch(self._store(state), batch)
        except DnsBackendError as exc:
            errors = dict.fromkeys(batch, exc)
        except Exception:
            # Unexpected (a libgit2 or file system failure): the waiters get a 502, the log
            # gets the details.
            logger.exception("git backend failed to publish a batch of %d changes", len(batch))
        finally:
            for change in batch:
                change.error = errors.get(change)
                change.done = True

    def _publish_batch(
        self, store: Store, batch: Sequence[_Change]
    ) -> dict[_Change, DnsBackendError]:
        """Commit the batch on the current tip and publish it, re-applying after lost races.

        A batch that changes nothing is only reported done once the tip it was checked against
        is known to be the published one (a stale clone could hide another writer's change).
        """
        base, fresh = store.tip(), store.authoritative
        for attempt in range(self._settings.max_attempts):
            plan = _plan(store.repo, base, batch)
            if plan.tree is None:
                latest = base if fresh else store.refresh()
                if latest == base:
                    return plan.errors
                base, fresh = latest, True
                continue
            commit = self._commit(store.repo, base, plan.tree, plan.summaries)
            try:
                store.publish(base, commit)
            except PushRejectedError:
                time.sleep(_backoff(attempt))
                base, fresh = store.refresh(), True
                continue
            return plan.errors
        raise DnsBackendUnavailableError(
            "the git remote kept changing under concurrent writers, try again later"
        )

    def _commit(
        self, repo: pygit2.Repository, base: pygit2.Oid, tree: pygit2.Oid, summaries: list[str]
    ) -> pygit2.Oid:
        """Write the commit object (not yet on any branch)."""
        signature = pygit2.Signature(self._settings.author_name, self._settings.author_email)
        if len(summaries) == 1:
            message = f"{summaries[0]}\n"
        else:
            message = f"Update {len(summaries)} records\n\n" + "".join(f"{s}\n" for s in summaries)
        commit: pygit2.Oid = repo.create_commit(None, signature, signature, message, tree, [base])
        return commit


def _plan(repo: pygit2.Repository, base: pygit2.Oid, batch: Sequence[_Change]) -> _Plan:
    """Apply the batch, in arrival order, to the zone files of ``base``'s tree."""
    tree = repo[base].peel(pygit2.Tree)
    zones = _TreeZones(tree)
    originals: dict[str, bytes] = {}
    contents: dict[str, bytes] = {}
    summaries: list[str] = []
    errors: dict[_Change, DnsBackendError] = {}
    for change in batch:
        zone = find_zone(change.fqdn, zones)
        if zone is None:
            errors[change] = ZoneNotFoundError(change.fqdn)
            continue
        if zone not in contents:
            originals[zone] = contents[zone] = _blob(repo, tree, zone)
        edit = add_value if change.action == "Add" else remove_value
        updated = edit(contents[zone], zone, change.fqdn, change.value)
        if updated != contents[zone]:
            contents[zone] = updated
            summaries.append(change.summary)
    changed = {zone: data for zone, data in contents.items() if data != originals[zone]}
    if not changed:
        return _Plan(tree=None, summaries=[], errors=errors)
    builder = repo.TreeBuilder(tree)
    for zone, data in changed.items():
        name = zone_file_name(zone)
        builder.insert(name, repo.create_blob(data), tree[name].filemode)
    return _Plan(tree=builder.write(), summaries=summaries, errors=errors)


def _blob(repo: pygit2.Repository, tree: pygit2.Tree, zone: str) -> bytes:
    """Return the zone file's bytes as committed."""
    data: bytes = repo[tree[zone_file_name(zone)].id].peel(pygit2.Blob).data
    return data


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    """Run a fork hook unless its backend is gone (hooks cannot be unregistered)."""
    bound = method()
    if bound is not None:
        bound()


def _backoff(attempt: int) -> float:
    """Return a jittered, growing pause so that racing writers stop colliding."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))  # noqa: S311


def from_env(environ: Mapping[str, str]) -> GitBackend:
    """Build the backend from ``DJANGO_GIT_*`` (see :func:`settings_from_env`).

    Raises:
        BackendConfigError: a variable is missing or invalid; the message names it.
    """
    settings = settings_from_env(environ)
    if settings.remote.kind == "local":
        # Written straight into the zone repository, a 200 promises the record is on disk:
        # have libgit2 fsync the objects and refs it writes (off by default). A remote reached
        # over the network keeps its own durability; our clone there is only a cache.
        pygit2.option(pygit2.enums.Option.ENABLE_FSYNC_GITDIR, True)
    return GitBackend(settings)
