"""The default SSH transport: git over one OpenSSH master connection, reused and recovered.

Connections are counted in the test sshd's log (one ``Accepted publickey`` line each); the
master is inspected and stopped with ``ssh -O check`` / ``ssh -O exit`` on its socket, as an
operator would.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from dns_backends.git import GitBackend, from_env

from tests.dns_backends.contract import token
from tests.dns_backends.git_fixtures import remote_file, ssh_environ
from tests.sshd import SshServer

EXIT_WAIT_SECONDS = 10


@pytest.fixture
def short_workdir() -> Iterator[Path]:
    """A work directory short enough for the control socket to live in it."""
    with tempfile.TemporaryDirectory(prefix="gw", dir="/tmp") as directory:
        yield Path(directory)


@pytest.fixture
def backend(sshd: SshServer, remote: Path, short_workdir: Path) -> Iterator[GitBackend]:
    backend = from_env(ssh_environ(sshd, remote, short_workdir))
    yield backend
    backend.close()


def connections(sshd: SshServer) -> int:
    """Return how many SSH connections the server has authenticated so far."""
    return (sshd.directory / "sshd.log").read_text(errors="replace").count("Accepted publickey")


def session_directory(parent: Path) -> Path:
    """Return this process's (only) session directory under ``parent``."""
    [found] = parent.glob(f"lego-ssh-{os.getpid()}-*")
    return found


def master_pid(control_path: Path) -> int | None:
    """Ask the master behind ``control_path`` for its pid (None: no master answers)."""
    result = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", f"ControlPath={control_path}", "-O", "check", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"pid=(\d+)", result.stderr)
    return int(found.group(1)) if result.returncode == 0 and found else None


def gone(pid: int) -> bool:
    """Tell whether ``pid`` has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until_gone(pid: int) -> bool:
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone(pid)


def running_master(backend: GitBackend, workdir: Path) -> tuple[Path, int]:
    """Present a record, which starts the master; return its control socket and its pid."""
    backend.present("_acme-challenge.a.example.com", token("a"))
    control_path = session_directory(workdir) / "s"
    pid = master_pid(control_path)
    assert pid is not None
    return control_path, pid


def test_presents_share_one_ssh_connection(
    backend: GitBackend, sshd: SshServer, remote: Path
) -> None:
    """Ten changes and reads (each a fetch or a push) authenticate to the server once."""
    before = connections(sshd)
    for i in range(5):
        backend.present(f"_acme-challenge.h{i}.example.com", token(str(i)))
        assert backend.values(f"_acme-challenge.h{i}.example.com") == {token(str(i))}
    assert connections(sshd) - before == 1
    assert all(
        token(str(i)).encode() in remote_file(remote, "example.com.domain") for i in range(5)
    )


def test_the_key_is_private_to_the_process_and_removed_on_close(
    sshd: SshServer, remote: Path, short_workdir: Path
) -> None:
    previous_umask = os.umask(0)  # whatever the umask, the key must not be readable by others
    try:
        backend = from_env(ssh_environ(sshd, remote, short_workdir))
        backend.present("_acme-challenge.www.example.com", token("a"))
    finally:
        os.umask(previous_umask)
    session = session_directory(short_workdir)
    assert stat.S_IMODE(session.stat().st_mode) == 0o700
    assert stat.S_IMODE((session / "id").stat().st_mode) == 0o600
    assert (session / "id").read_text().strip() == sshd.client_key.strip()
    backend.close()
    assert not session.exists()
    assert [
        p
        for p in short_workdir.rglob("*")
        if p.is_file() and p.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY")
    ] == []


def test_close_stops_the_master_connection(
    sshd: SshServer, remote: Path, short_workdir: Path
) -> None:
    backend = from_env(ssh_environ(sshd, remote, short_workdir))
    control_path, pid = running_master(backend, short_workdir)
    backend.close()
    assert wait_until_gone(pid)
    assert master_pid(control_path) is None


def test_a_killed_master_is_replaced_without_the_caller_noticing(
    backend: GitBackend, sshd: SshServer, short_workdir: Path
) -> None:
    """The socket of a dead master is stale: the next transfer removes it and starts anew."""
    control_path, killed = running_master(backend, short_workdir)
    before = connections(sshd)
    os.kill(killed, signal.SIGKILL)
    assert wait_until_gone(killed)
    backend.present("_acme-challenge.b.example.com", token("b"))
    backend.present("_acme-challenge.c.example.com", token("c"))
    assert backend.values("_acme-challenge.b.example.com") == {token("b")}
    replacement = master_pid(control_path)
    assert replacement not in (None, killed)
    assert connections(sshd) - before == 1


def test_a_removed_control_socket_is_replaced_without_the_caller_noticing(
    backend: GitBackend, sshd: SshServer, short_workdir: Path
) -> None:
    control_path, orphan = running_master(backend, short_workdir)
    control_path.unlink()
    try:
        backend.present("_acme-challenge.b.example.com", token("b"))
        assert backend.values("_acme-challenge.b.example.com") == {token("b")}
        assert master_pid(control_path) not in (None, orphan)
    finally:
        # Unreachable without its socket, it would idle out. SIGKILL: on SIGTERM it would
        # remove the socket at its path, which is now the new master's.
        os.kill(orphan, signal.SIGKILL)


def test_a_long_or_unusual_work_directory_keeps_its_socket_in_tmp(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    """Unix socket paths are short, and ssh expands ``%`` in paths: neither may break it."""
    workdir = tmp_path / ("w" * 80) / "100% work dir"
    with closing(from_env(ssh_environ(sshd, remote, workdir))) as backend:
        backend.present("_acme-challenge.www.example.com", token("a"))
        session = session_directory(Path("/tmp"))
        assert master_pid(session / "s") is not None
    assert not session.exists()
    assert token("a").encode() in remote_file(remote, "example.com.domain")


def test_session_directories_of_dead_processes_are_removed(
    sshd: SshServer, remote: Path, short_workdir: Path
) -> None:
    """A process killed before ``close`` leaves its key behind; the next one removes it."""
    abandoned = short_workdir / "lego-ssh-4194305-abcdefgh"  # above Linux's largest pid
    abandoned.mkdir(mode=0o700)
    (abandoned / "id").write_text(sshd.client_key)
    with closing(from_env(ssh_environ(sshd, remote, short_workdir))) as backend:
        backend.present("_acme-challenge.www.example.com", token("a"))
    assert not abandoned.exists()


def present_in_forked_child(backend: GitBackend, name: str) -> None:
    """Run in a child forked from a process that already used ``backend``; close it there."""
    try:
        backend.present(name, token(name))
    finally:
        backend.close()


def test_a_forked_child_opens_its_own_session_and_leaves_the_parents_alone(
    backend: GitBackend, remote: Path, short_workdir: Path
) -> None:
    backend.present("_acme-challenge.parent.example.com", token("parent"))
    parent_session = session_directory(short_workdir)
    parent_master = master_pid(parent_session / "s")
    child = multiprocessing.get_context("fork").Process(
        target=present_in_forked_child, args=(backend, "_acme-challenge.child.example.com")
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert master_pid(parent_session / "s") == parent_master
    backend.present("_acme-challenge.parent2.example.com", token("parent2"))
    zone = remote_file(remote, "example.com.domain")
    assert all(token(n).encode() in zone for n in ["parent", "parent2"])
    assert token("_acme-challenge.child.example.com").encode() in zone
