"""A local zone repository with receive hooks: every publish goes through them.

A DNS team may deploy from a ``post-receive`` hook of a bare repository on the provider's own
machine; writing into it directly would skip the hook, so the backend pushes instead whenever
the repository has one (and writes directly, the fast way, when it has none).
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from dns_backends import DnsBackendError, DnsBackendUnavailableError
from dns_backends.git import GitBackend, from_env

from tests.dns_backends.contract import token
from tests.dns_backends.git_fixtures import (
    SEED_ZONES,
    TEAM_RECORD,
    commit_messages,
    git,
    local_environ,
    present_around_a_team_push,
    present_in_process,
    remote_file,
)

NAMES = [f"_acme-challenge.h{i}.example.com" for i in range(24)]


@pytest.fixture
def backend(remote: Path, tmp_path: Path) -> Iterator[GitBackend]:
    backend = from_env(local_environ(remote, tmp_path / "work"))
    yield backend
    backend.close()


def install_hook(hooks: Path, name: str, script: str) -> Path:
    hooks.mkdir(parents=True, exist_ok=True)
    hook = hooks / name
    hook.write_text(f"#!/bin/sh\n{script}\n")
    hook.chmod(0o755)
    return hook


def install_logging_post_receive(remote: Path, log: Path) -> None:
    """A post-receive hook that appends the ref updates it is given to ``log``."""
    install_hook(remote / "hooks", "post-receive", f"cat >> '{log}'")


def ref_updates(log: Path) -> list[list[str]]:
    """Return the ``<old> <new> <ref>`` lines the post-receive hook logged, oldest first."""
    if not log.exists():
        return []
    return [line.split() for line in log.read_text().splitlines()]


def branch_history(remote: Path) -> list[str]:
    """Return the branch's commits, oldest first."""
    return git("--git-dir", remote, "rev-list", "--reverse", "main").decode().split()


def object_count(remote: Path) -> str:
    return git("--git-dir", remote, "count-objects", "-v").decode()


def test_a_post_receive_hook_runs_once_per_publish_with_the_ref_update(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    log = tmp_path / "post-receive.log"
    install_logging_post_receive(remote, log)
    name = "_acme-challenge.www.example.com"
    backend.present(name, token("a"))
    backend.present(name, token("b"))
    backend.present(name, token("b"))  # no change, no push
    backend.cleanup(name, token("a"))
    history = branch_history(remote)
    assert ref_updates(log) == [
        [old, new, "refs/heads/main"] for old, new in itertools.pairwise(history)
    ]
    assert len(history) == 4
    assert backend.values(name) == {token("b")}


@pytest.mark.parametrize(
    "hook", ["pre-receive", "update", "post-receive", "post-update", "reference-transaction"]
)
def test_each_receive_hook_is_run(
    backend: GitBackend, remote: Path, tmp_path: Path, hook: str
) -> None:
    log = tmp_path / "hook.log"
    install_hook(remote / "hooks", hook, f"echo {hook} >> '{log}'")
    backend.present("_acme-challenge.www.example.com", token("a"))
    assert hook in log.read_text().split()
    assert token("a").encode() in remote_file(remote, "example.com.domain")


def test_a_refusing_pre_receive_hook_is_an_error_with_its_reason_and_nothing_is_kept(
    backend: GitBackend, remote: Path
) -> None:
    install_hook(remote / "hooks", "pre-receive", "echo 'zone freeze until 18:00' >&2; exit 1")
    objects_before = object_count(remote)
    with pytest.raises(DnsBackendError, match="refused the push") as raised:
        backend.present("_acme-challenge.www.example.com", token("a"))
    assert not isinstance(raised.value, DnsBackendUnavailableError)
    assert "pre-receive hook declined: zone freeze until 18:00" in raised.value.public_message
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]
    assert object_count(remote) == objects_before  # the refused objects were not written
    assert backend.values("_acme-challenge.www.example.com") == set()


def test_a_hook_installed_or_removed_while_running_is_followed_at_the_next_publish(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    log = tmp_path / "post-receive.log"
    backend.present("_acme-challenge.a.example.com", token("a"))
    install_logging_post_receive(remote, log)
    backend.present("_acme-challenge.b.example.com", token("b"))
    assert len(ref_updates(log)) == 1
    (remote / "hooks" / "post-receive").unlink()
    backend.present("_acme-challenge.c.example.com", token("c"))
    assert len(ref_updates(log)) == 1
    zone = remote_file(remote, "example.com.domain")
    assert all(token(v).encode() in zone for v in "abc")


def test_without_hooks_the_repository_is_written_directly(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    """No staging repository and no git process: a non-executable file is not a hook."""
    (remote / "hooks" / "post-receive").write_text("#!/bin/sh\nexit 1\n")
    backend.present("_acme-challenge.www.example.com", token("a"))
    assert list((tmp_path / "work").glob("stage-*")) == []
    assert token("a").encode() in remote_file(remote, "example.com.domain")


def test_core_hooks_path_is_honoured(backend: GitBackend, remote: Path, tmp_path: Path) -> None:
    log = tmp_path / "post-receive.log"
    install_hook(tmp_path / "team-hooks", "post-receive", f"cat >> '{log}'")
    git("--git-dir", remote, "config", "core.hooksPath", tmp_path / "team-hooks")
    backend.present("_acme-challenge.www.example.com", token("a"))
    assert len(ref_updates(log)) == 1


def test_a_commit_pushed_by_someone_else_is_kept_through_the_hooks(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    log = tmp_path / "post-receive.log"
    install_logging_post_receive(remote, log)
    zone = present_around_a_team_push(backend, remote, tmp_path / "team")
    assert TEAM_RECORD in zone
    assert token("a").encode() in zone
    assert token("b").encode() in zone
    history = branch_history(remote)
    assert ref_updates(log) == [
        [old, new, "refs/heads/main"] for old, new in itertools.pairwise(history)
    ]


def test_concurrent_writers_lose_nothing_and_the_hook_sees_every_update_once(
    remote: Path, tmp_path: Path
) -> None:
    """Two hosts (work directories) with threads, and two processes sharing a third one."""
    log = tmp_path / "post-receive.log"
    install_logging_post_receive(remote, log)
    backends = [from_env(local_environ(remote, tmp_path / f"host{i}")) for i in range(2)]
    shared = local_environ(remote, tmp_path / "shared")
    in_threads, in_processes = NAMES[:12], [NAMES[12::2], NAMES[13::2]]
    context = multiprocessing.get_context("spawn")
    try:
        with (
            ProcessPoolExecutor(max_workers=2, mp_context=context) as processes,
            ThreadPoolExecutor(max_workers=len(in_threads)) as threads,
        ):
            process_results = processes.map(present_in_process, [shared, shared], in_processes)
            futures = [
                threads.submit(backends[i % 2].present, name, token(name))
                for i, name in enumerate(in_threads)
            ]
            assert [future.exception() for future in futures] == [None] * len(futures)
            assert list(process_results) == [[], []]
    finally:
        for backend in backends:
            backend.close()
    zone = remote_file(remote, "example.com.domain")
    assert all(token(name).encode() in zone for name in NAMES)
    history = branch_history(remote)
    assert ref_updates(log) == [
        [old, new, "refs/heads/main"] for old, new in itertools.pairwise(history)
    ]
    listed = [line for message in commit_messages(remote)[:-1] for line in message.splitlines()]
    assert sorted(line for line in listed if line.startswith("Add ")) == sorted(
        f"Add {name} record" for name in NAMES
    )
