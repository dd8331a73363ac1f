"""The git backend: challenge records committed to the DNS team's zone repository.

Writes are group-committed. A request enqueues its change and waits; one thread at a time
(the leader) takes every pending change, applies them to the latest known tip, commits once and
publishes. Each waiter returns only once the commit holding its change is published. When
another writer got in first, the leader re-reads the tip, re-applies the changes and tries again
(a bounded number of times, with jittered backoff). Processes on one host take turns through a
lock file in the work directory; hosts through git's own check of the branch's old value.
Nothing holding libgit2 handles survives a fork: each process opens its own on first use.

Every request brings a deadline. A change still queued when its deadline passes is withdrawn
(it is never published later); a batch is led within the earliest deadline of its changes, and
every wait (locks, fetch, push, backoff) draws from it. A batch is one commit, so when time runs
out its changes are all published or none is.
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
from pathlib import Path
from typing import Literal

import pygit2
from cooperative import off_the_event_loop

from dns_backends import events
from dns_backends.base import DnsBackendError, DnsBackendUnavailableError, InvalidRecordError
from dns_backends.deadline import Deadline, default_deadline
from dns_backends.git.repository import (
    Change,
    PushRejectedError,
    Store,
    TreeZones,
    open_store,
    plan,
    write_commit,
    zone_file,
)
from dns_backends.git.settings import GitSettings, settings_from_env
from dns_backends.git.zonefile import normalise, values_at
from dns_backends.zones import find_zone

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.5
# Waiting for another process's lock: poll, doubling the pause up to this (flock cannot time out).
LOCK_POLL_CAP_SECONDS = 0.01
QUEUED_STEP = "waiting for earlier changes to be published"


@dataclass(eq=False)
class _Request:
    """One request's changes (one commit holds them all), and what became of them."""

    changes: tuple[Change, ...]
    deadline: Deadline
    done: bool = False
    error: DnsBackendError | None = None


@dataclass(eq=False)
class _ProcessState:
    """What one process owns: its queue, its repository handles and its lock file."""

    pid: int
    lock_fd: int
    store: Store | None = None
    pending: list[_Request] = field(default_factory=list)
    leading: bool = False
    wakeup: threading.Condition = field(default_factory=threading.Condition)
    git_lock: threading.Lock = field(default_factory=threading.Lock)


class GitBackend:
    """Publish TXT records by committing to a git repository of bind zone files."""

    def __init__(self, settings: GitSettings) -> None:
        self._settings = settings
        self._state: _ProcessState | None = None
        self._state_lock = threading.Lock()
        forget = weakref.WeakMethod(self._forget_parent_state)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(forget))

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Add the TXT value at ``fqdn`` beside any others; return once it is pushed."""
        change = _change("Add", fqdn, value)
        self._submit(_Request((change,), deadline or default_deadline()))

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Remove exactly this TXT value at ``fqdn``; return once the removal is pushed."""
        change = _change("Remove", fqdn, value)
        self._submit(_Request((change,), deadline or default_deadline()))

    def replace(
        self,
        fqdn: str,
        value: str,
        old_values: Sequence[str],
        deadline: Deadline | None = None,
    ) -> None:
        """Remove the old values and add the new one in one commit; return once it is pushed."""
        removals = [_change("Remove", fqdn, old) for old in old_values if old != value]
        changes = (*removals, _change("Add", fqdn, value))
        self._submit(_Request(changes, deadline or default_deadline()))

    def values(self, fqdn: str) -> set[str]:
        """Return the values published at ``fqdn`` in the remote's current state."""
        name = fqdn.lower().removesuffix(".")
        state = self._process_state()
        deadline = default_deadline()
        with self._locks(state, deadline):
            store = self._store(state, deadline)
            tree = store.repo[store.refresh(deadline)].peel(pygit2.Tree)
            zone = find_zone(name, TreeZones(tree))
            if zone is None:
                return set()
            return values_at(zone_file(store.repo, tree, zone), zone, name)

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

    def _store(self, state: _ProcessState, deadline: Deadline) -> Store:
        """Open the store on first use (callers hold the git lock and the host lock)."""
        if state.store is None:
            state.store = open_store(self._settings, deadline)
        return state.store

    @contextmanager
    def _locks(self, state: _ProcessState, deadline: Deadline) -> Iterator[None]:
        """Take this process's git lock, then turns with the host's other processes."""
        step = "waiting for this process's git lock"
        if not state.git_lock.acquire(timeout=deadline.check(step)):
            raise deadline.exceeded(step)
        try:
            with self._host_lock(state, deadline):
                yield
        finally:
            state.git_lock.release()

    @contextmanager
    def _host_lock(self, state: _ProcessState, deadline: Deadline) -> Iterator[None]:
        """Take turns with the other processes that share this work directory.

        ``flock`` cannot wait with a timeout, so a held lock is polled until the deadline.
        """
        pause = 0.0005
        while True:
            try:
                fcntl.flock(state.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline.check("waiting for another process to publish its changes")
                time.sleep(min(pause, left))
                pause = min(pause * 2, LOCK_POLL_CAP_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(state.lock_fd, fcntl.LOCK_UN)

    # -- group commit ------------------------------------------------------------------------

    def _submit(self, request: _Request) -> None:
        """Queue ``request``, lead a batch when no other thread is, and wait for its outcome.

        While queued, a request whose deadline passes withdraws its change. Once a leader has
        taken it, it waits for the leader's verdict, which comes by the batch's deadline.
        """
        state = self._process_state()
        with state.wakeup:
            state.pending.append(request)
            while not request.done:
                if state.leading:
                    if request in state.pending:
                        left = request.deadline.remaining()
                        if left <= 0:
                            state.pending.remove(request)
                            raise request.deadline.exceeded(QUEUED_STEP)
                        state.wakeup.wait(left)
                    else:
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
        if request.error is not None:
            raise request.error

    def _lead(self, state: _ProcessState, batch: list[_Request]) -> None:
        """Publish one batch and record each change's outcome; never leave a waiter hanging.

        Changes whose deadline has already passed are refused unpublished; the others are
        published within the earliest of their deadlines.
        """
        for request in batch:
            if request.deadline.remaining() <= 0:
                request.error = request.deadline.exceeded(QUEUED_STEP)
                request.done = True
        batch = [request for request in batch if not request.done]
        if not batch:
            return
        deadline = min((request.deadline for request in batch), key=lambda d: d.expires_at)
        changes = [change for request in batch for change in request.changes]
        errors: dict[Change, DnsBackendError] = dict.fromkeys(changes, DnsBackendError())
        try:
            with self._locks(state, deadline):
                errors = self._publish_batch(self._store(state, deadline), changes, deadline)
        except DnsBackendError as exc:
            errors = dict.fromkeys(changes, exc)
        except Exception:
            # Unexpected (a libgit2 or file system failure): the waiters get a 502, the log
            # gets the details.
            logger.exception("git backend failed to publish a batch of %d changes", len(batch))
        finally:
            for request in batch:
                failed = (errors[c] for c in request.changes if c in errors)
                request.error = next(failed, None)
                request.done = True

    def _publish_batch(
        self, store: Store, batch: Sequence[Change], deadline: Deadline
    ) -> dict[Change, DnsBackendError]:
        """Commit the batch on the current tip and publish it, re-applying after lost races.

        A batch that changes nothing is only reported done once the tip it was checked against
        is known to be the published one (a stale clone could hide another writer's change).
        """
        base, fresh = store.tip(deadline), store.authoritative
        for attempt in range(self._settings.max_attempts):
            repo = store.repo
            # Reading zone files and writing objects (fsync'd for a local repository) take a
            # few milliseconds: under gevent, on a pool thread (see cooperative.py).
            planned = off_the_event_loop(plan, repo, base, batch)
            if planned.tree is None:
                latest = base if fresh else store.refresh(deadline)
                if latest == base:
                    return planned.errors
                base, fresh = latest, True
                continue
            author = pygit2.Signature(self._settings.author_name, self._settings.author_email)
            commit = off_the_event_loop(
                write_commit, repo, base, planned.tree, planned.summaries, author
            )
            try:
                store.publish(base, commit, deadline)
            except PushRejectedError:
                events.emit("git", "push_conflict")
                left = deadline.check("retrying after another writer's change")
                time.sleep(min(_backoff(attempt), left))
                base, fresh = store.refresh(deadline), True
                events.emit("git", "push_retry")
                continue
            return planned.errors
        raise DnsBackendUnavailableError(
            "the git remote kept changing under concurrent writers, try again later"
        )


def _change(action: Literal["Add", "Remove"], fqdn: str, value: str) -> Change:
    """Return the change to make, or refuse a name or value no zone file line may hold."""
    try:
        return Change(action, *normalise(fqdn, value))
    except ValueError as exc:
        raise InvalidRecordError(str(exc)) from exc


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    """Run a fork hook unless its backend is gone (hooks cannot be unregistered)."""
    bound = method()
    if bound is not None:
        bound()


def _backoff(attempt: int) -> float:
    """Return a jittered, growing pause so that racing writers stop colliding."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))  # noqa: S311


def from_env(environ: Mapping[str, str], *, data_dir: Path | None = None) -> GitBackend:
    """Build the backend from ``DJANGO_GIT_*`` (see :func:`settings_from_env`).

    Raises:
        BackendConfigError: a variable is missing or invalid; the message names it.
    """
    settings = settings_from_env(environ, data_dir=data_dir)
    if settings.remote.kind == "local":
        # Written straight into the zone repository, a 200 promises the record is on disk:
        # have libgit2 fsync the objects and refs it writes (off by default). A remote reached
        # over the network keeps its own durability; our clone there is only a cache.
        pygit2.option(pygit2.enums.Option.ENABLE_FSYNC_GITDIR, True)
    return GitBackend(settings)
