"""The git backend within a request's deadline: a 503 to retry, the change whole or not at all.

Against real bare repositories whose hooks hold a push (a hook that waits for the test to
release it, as a slow deployment would), a work-directory lock held by another process, and
the real sshd for SSH remotes. After each 503 the remote itself is read with the git CLI.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from api.errors import backend_status
from dns_backends import Deadline, DeadlineExceededError, DnsBackendUnavailableError
from dns_backends.git import GitBackend, from_env

from tests.dns_backends.contract import token
from tests.dns_backends.git_fixtures import (
    commit_messages,
    git,
    local_environ,
    remote_file,
    ssh_environ,
    zone_file_txt,
)
from tests.sshd import SshServer

NAME = "_acme-challenge.www.example.com"
OTHER = "_acme-challenge.other.example.com"
# Short enough for the suite, long enough for a publish on a busy machine (about 50 ms here).
SHORT = 1.5
# Longer than git's default receive.keepAlive (5 s) between packets while a hook runs.
KEEPALIVE_OUTLASTING = 8.0
LIVENESS_SECONDS = 30  # how long a stopped hook may take to disappear before the test fails


class HeldHook:
    """A receive hook that records its pid, then waits until the test releases it."""

    def __init__(self, remote: Path, name: str, directory: Path) -> None:
        self.pid_file = directory / f"{name}.pid"
        self.release_file = directory / f"{name}.release"
        hook = remote / "hooks" / name
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(
            "#!/bin/sh\n"
            "cat > /dev/null\n"
            f"echo $$ > '{self.pid_file}'\n"
            f"while [ ! -e '{self.release_file}' ]; do sleep 0.02; done\n"
        )
        hook.chmod(0o755)

    def wait_until_running(self) -> int:
        """Return the hook's pid once it has started."""
        give_up = time.monotonic() + LIVENESS_SECONDS
        while not self.pid_file.exists() or not self.pid_file.read_text().strip():
            assert time.monotonic() < give_up, "the hook never started"
            time.sleep(0.01)
        return int(self.pid_file.read_text())

    def wait_until_gone(self) -> None:
        """Return once the hook's process has ended (stopped with the push, or released)."""
        pid = self.wait_until_running()
        give_up = time.monotonic() + LIVENESS_SECONDS
        while _alive(pid):
            assert time.monotonic() < give_up, f"hook {pid} still runs"
            time.sleep(0.01)

    def release(self) -> None:
        self.release_file.touch()


def wait_for_receive_packs_to_end(remote: Path) -> None:
    """Return once no ``git receive-pack`` serves ``remote`` (the remote side has finished)."""
    give_up = time.monotonic() + LIVENESS_SECONDS
    while True:
        serving = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                words = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            serves = any(b"receive-pack" in word for word in words)
            if serves and str(remote).encode() in words and _alive(int(cmdline.parent.name)):
                serving.append(cmdline.parent.name)
        if not serving:
            return
        assert time.monotonic() < give_up, f"receive-pack {serving} still runs"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def backend(remote: Path, tmp_path: Path) -> Iterator[GitBackend]:
    backend = from_env(local_environ(remote, tmp_path / "work"))
    yield backend
    backend.close()


def tip(remote: Path) -> bytes:
    return git("--git-dir", remote, "rev-parse", "main")


def test_a_push_held_by_a_pre_receive_hook_is_stopped_and_publishes_nothing(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    """The hook is stopped with the push: releasing it later cannot publish the change."""
    before = tip(remote)
    hook = HeldHook(remote, "pre-receive", tmp_path)
    with pytest.raises(DeadlineExceededError, match="ran out while pushing") as raised:
        backend.present(NAME, token("held"), Deadline.after(SHORT))
    assert backend_status(raised.value) == 503
    assert "try again" in raised.value.public_message
    hook.wait_until_gone()
    hook.release()
    assert tip(remote) == before
    assert zone_file_txt(remote, "example.com", NAME) == set()
    backend.present(NAME, token("held"))  # the retry the 503 asks for
    assert zone_file_txt(remote, "example.com", NAME) == {token("held")}


def test_a_push_whose_post_receive_hook_outlives_the_deadline_is_published_whole(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    """The branch moved before the hook ran: the 503 comes with the whole commit published."""
    hook = HeldHook(remote, "post-receive", tmp_path)
    with pytest.raises(DeadlineExceededError, match="ran out while pushing"):
        backend.present(NAME, token("late"), Deadline.after(SHORT))
    hook.wait_until_gone()
    assert commit_messages(remote)[0] == f"Add {NAME} record"
    assert zone_file_txt(remote, "example.com", NAME) == {token("late")}
    hook.release()
    backend.present(NAME, token("late"))  # the retry: nothing left to do
    assert len(commit_messages(remote)) == 2
    assert zone_file_txt(remote, "example.com", NAME) == {token("late")}


def test_a_change_queued_behind_a_slow_publish_is_withdrawn_when_its_deadline_passes(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    """It is never published later by the batch that was in flight, nor by the next one."""
    hook = HeldHook(remote, "pre-receive", tmp_path)
    leader_error: list[BaseException] = []

    def lead() -> None:
        try:
            backend.present(NAME, token("leader"), Deadline.after(LIVENESS_SECONDS))
        except BaseException as exc:  # pragma: no cover - reported below
            leader_error.append(exc)

    leader = threading.Thread(target=lead)
    leader.start()
    hook.wait_until_running()
    with pytest.raises(DeadlineExceededError, match="waiting for earlier changes"):
        backend.present(OTHER, token("queued"), Deadline.after(SHORT))
    hook.release()
    leader.join()
    assert leader_error == []
    backend.present("_acme-challenge.next.example.com", token("next"))
    zone = remote_file(remote, "example.com.domain")
    assert token("leader").encode() in zone
    assert token("next").encode() in zone
    assert token("queued").encode() not in zone


def test_a_work_directory_lock_held_by_another_process_ends_in_a_503_publishing_nothing(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    backend.present(NAME, token("first"))  # creates the work directory and its lock file
    (lock_path,) = (tmp_path / "work").glob("*.lock")
    before = tip(remote)
    # Another process of this host (a second open file description locks against ours).
    with closing(os.fdopen(os.open(lock_path, os.O_RDWR), "rb")) as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DeadlineExceededError, match="another process") as raised:
            backend.present(OTHER, token("blocked"), Deadline.after(SHORT))
        assert backend_status(raised.value) == 503
    assert tip(remote) == before
    backend.present("_acme-challenge.next.example.com", token("next"))
    assert zone_file_txt(remote, "example.com", OTHER) == set()


@pytest.mark.parametrize("seconds", [SHORT, KEEPALIVE_OUTLASTING], ids=["short", "long"])
@pytest.mark.parametrize("transport", ["openssh", "libgit2"])
def test_an_ssh_push_held_by_the_remote_ends_in_a_503_and_the_branch_moves_whole_or_not(
    sshd: SshServer, remote: Path, tmp_path: Path, transport: str, seconds: float
) -> None:
    """Over a network the branch moves whole or not at all, even after the client gave up.

    The remote may still finish a push the client stopped waiting for, so the zone holds the
    commit entirely or nothing of it, and the retry the 503 asks for publishes the record
    exactly once. The long deadline outlasts git's keep-alive interval (receive.keepAlive,
    5 s): the remote keeps the stalled connection busy, and only the deadline ends the wait.
    """
    environ = ssh_environ(sshd, remote, tmp_path / "work", DJANGO_GIT_SSH_TRANSPORT=transport)
    with closing(from_env(environ)) as backend:
        backend.present("_acme-challenge.warm.example.com", token("warm"))  # clone, connect
        before = tip(remote)
        hook = HeldHook(remote, "pre-receive", tmp_path)
        with pytest.raises(DnsBackendUnavailableError, match="try again") as raised:
            backend.present(NAME, token("ssh"), Deadline.after(seconds))
        assert backend_status(raised.value) == 503
        hook.release()
        wait_for_receive_packs_to_end(remote)
        if tip(remote) == before:
            assert zone_file_txt(remote, "example.com", NAME) == set()
        else:
            assert commit_messages(remote)[0] == f"Add {NAME} record"
            assert zone_file_txt(remote, "example.com", NAME) == {token("ssh")}
        (remote / "hooks" / "pre-receive").unlink()
        backend.present(NAME, token("ssh"))
        assert zone_file_txt(remote, "example.com", NAME) == {token("ssh")}
        assert remote_file(remote, "example.com.domain").count(token("ssh").encode()) == 1
