"""Many writers, one remote: no record is lost, whatever the mix of threads, processes, hosts.

Hosts are simulated by separate work directories. Each scenario runs over a local remote, over
a local remote with a receive hook, and over SSH, whose paths to the remote differ
(compare-and-swap; ``git push`` to receive-pack with a lease; push over one SSH connection).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from dns_backends.git import GitBackend, from_env

from tests.dns_backends.contract import token
from tests.dns_backends.git_fixtures import (
    SEED_ZONES,
    commit_messages,
    local_environ,
    present_in_process,
    remote_file,
    ssh_environ,
)
from tests.sshd import SshServer

NAMES = [f"_acme-challenge.h{i}.example.com" for i in range(40)]

EnvironFactory = Callable[[Path], dict[str, str]]


@pytest.fixture(params=["file", "file-with-hook", "ssh"])
def environ_for(request: pytest.FixtureRequest, remote: Path) -> EnvironFactory:
    """Return a function giving the backend environment for a work directory."""
    if request.param == "file-with-hook":
        hook = remote / "hooks" / "post-receive"
        hook.write_text(f"#!/bin/sh\ncat >> '{remote.parent / 'post-receive.log'}'\n")
        hook.chmod(0o755)
    if request.param.startswith("file"):
        return lambda workdir: local_environ(remote, workdir)
    sshd: SshServer = request.getfixturevalue("sshd")
    return lambda workdir: ssh_environ(sshd, remote, workdir)


def published(remote: Path) -> bytes:
    return remote_file(remote, "example.com.domain")


def run_everywhere(backends: list[GitBackend], action: str) -> None:
    """Call ``action`` for every name at once, spreading the names over the backends."""
    with ThreadPoolExecutor(max_workers=len(NAMES)) as pool:
        futures = [
            pool.submit(getattr(backends[i % len(backends)], action), name, token(name))
            for i, name in enumerate(NAMES)
        ]
    assert [future.exception() for future in futures] == [None] * len(NAMES)


def test_three_hosts_with_their_own_workdirs_lose_no_record(
    environ_for: EnvironFactory, remote: Path, tmp_path: Path
) -> None:
    backends = [from_env(environ_for(tmp_path / f"host{i}")) for i in range(3)]
    try:
        run_everywhere(backends, "present")
        zone = published(remote)
        assert all(token(name).encode() in zone for name in NAMES)
        run_everywhere(backends, "cleanup")
    finally:
        for backend in backends:
            backend.close()
    assert published(remote) == SEED_ZONES["example.com.domain"]


def test_processes_sharing_one_workdir_lose_no_record(
    environ_for: EnvironFactory, remote: Path, tmp_path: Path
) -> None:
    """Like gunicorn workers on one host: separate processes, one work directory."""
    environ = environ_for(tmp_path / "shared")
    halves = [NAMES[0::2], NAMES[1::2]]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(present_in_process, [environ, environ], halves))
    assert results == [[], []]
    zone = published(remote)
    assert all(token(name).encode() in zone for name in NAMES)
    backend = from_env(environ)
    try:
        run_everywhere([backend], "cleanup")
    finally:
        backend.close()
    assert published(remote) == SEED_ZONES["example.com.domain"]


def test_concurrent_requests_are_group_committed(
    environ_for: EnvironFactory, remote: Path, tmp_path: Path
) -> None:
    """Requests waiting behind a push share the next commit, which lists each of them."""
    backend = from_env(environ_for(tmp_path / "work"))
    try:
        run_everywhere([backend], "present")
    finally:
        backend.close()
    messages = commit_messages(remote)[:-1]
    assert len(messages) < len(NAMES)
    listed = [line for message in messages for line in message.splitlines()]
    assert sorted(line for line in listed if line.startswith("Add ")) == sorted(
        f"Add {name} record" for name in NAMES
    )
