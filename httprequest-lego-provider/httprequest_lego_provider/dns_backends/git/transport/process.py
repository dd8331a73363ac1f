"""Run one command to its end or to a timeout, with threads or under gevent's event loop.

With threads, :class:`subprocess.Popen` starts it (with vfork: cheap). Under gevent, the
patched ``Popen`` copies the whole worker with ``fork`` in Python, 16-20 ms for a 90 MB worker
during which no other request of it runs; there the command is started with ``posix_spawn``
instead (vfork in glibc: about 1 ms), which gevent's patch registers with its child watcher, and
its pipes and its exit are waited for through the event loop. Either way the command runs in a
session (process group) of its own with stdin from ``/dev/null``, and at the timeout the whole
group is killed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cooperative import gevent_patched

READ_SIZE = 65536
# Python ignores SIGPIPE (and SIGXFSZ); subprocess restores their defaults for the child.
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


@dataclass(frozen=True)
class Completed:
    """A command that ended: its exit code (negative: killed by that signal) and its output."""

    returncode: int
    stdout: bytes
    stderr: bytes


class CommandTimeoutError(Exception):
    """The command outlived its time; it and its process group were killed and reaped."""


def run_command(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> Completed:
    """Run ``argv`` (looked up on ``env``'s ``PATH``) and capture its stdout and stderr.

    Raises:
        FileNotFoundError: the program is not installed.
        CommandTimeoutError: it ran ``timeout`` seconds without ending.
    """
    if gevent_patched():
        import gevent.os  # only where gevent already runs

        if hasattr(gevent.os, "posix_spawn"):  # absent when gevent watches no children
            return _run_spawned(argv, env, timeout)
    return _run_popen(argv, env, timeout)


def _run_popen(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> Completed:
    process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        # Reap the command without reading its pipes to their end: an OpenSSH master (another
        # session) holds the stopped session's stderr until the remote side of it ends.
        process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        raise CommandTimeoutError from exc
    return Completed(process.returncode, stdout, stderr)


def _run_spawned(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> Completed:
    """Under gevent: ``posix_spawn``, then the pipes and the exit through the event loop."""
    import gevent
    import gevent.os
    import gevent.select

    executable = shutil.which(argv[0], path=os.pathsep.join(os.get_exec_path(dict(env))))
    if executable is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    out_read, out_write = os.pipe()  # both ends close on exec; dup2 makes 1 and 2 inherited
    err_read, err_write = os.pipe()
    try:
        pid = gevent.os.posix_spawn(
            executable,
            list(argv),
            dict(env),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_write, 1),
                (os.POSIX_SPAWN_DUP2, err_write, 2),
            ],
            setsid=True,
            setsigdef=_RESTORED_SIGNALS,
        )
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        for fd in (out_write, err_write):
            os.close(fd)
    output: dict[int, list[bytes]] = {out_read: [], err_read: []}
    reaped = False
    timer = gevent.Timeout(timeout)
    timer.start()
    try:
        open_fds = [out_read, err_read]
        while open_fds:
            ready, _, _ = gevent.select.select(open_fds, [], [])
            for fd in ready:
                data = os.read(fd, READ_SIZE)
                if data:
                    output[fd].append(data)
                else:
                    open_fds.remove(fd)
        _, status = gevent.os.waitpid(pid, 0)
        reaped = True
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        raise CommandTimeoutError from None
    finally:
        timer.close()
        if not reaped:  # the timeout, or this greenlet was killed: stop the command's group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                gevent.os.waitpid(pid, 0)
        for fd in (out_read, err_read):
            os.close(fd)
    return Completed(
        os.waitstatus_to_exitcode(status), b"".join(output[out_read]), b"".join(output[err_read])
    )
