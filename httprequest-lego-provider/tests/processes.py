"""Servers the tests start themselves: a log file, a deadline to be ready, a stop by PID.

Nothing here is skipped: a missing program or a server that does not come up raises
:class:`InfraError` with the tail of its log, so the test that needed it fails loudly.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

LOOPBACK = "127.0.0.1"


class InfraError(RuntimeError):
    """A test tool is missing or did not start; the message says which and why."""


def require_tool(name: str) -> str:
    """Return the path of an installed program, or fail naming the Debian packages to install."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        raise InfraError(
            f"{name} is not installed: run scripts/bootstrap "
            "(Debian packages bind9, bind9-utils, bind9-dnsutils, lego, pebble)"
        )
    return path


def free_port() -> int:
    """Return a loopback port that is free for both TCP and UDP right now (DNS needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise InfraError("no free loopback port for both TCP and UDP")


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> str:
    """Run a command to its end and return its output.

    Raises:
        InfraError: it failed or timed out; the message holds the command and its output.
    """
    command = " ".join(map(str, args))
    try:
        result = subprocess.run(
            [str(arg) for arg in args],
            cwd=cwd,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"{command} did not finish in {timeout} s: {exc.output!r}") from exc
    if result.returncode != 0:
        raise InfraError(
            f"{command} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout


class ManagedProcess:
    """One server process of a test, its output (stdout and stderr) in ``log_file``.

    It is stopped by the PID we started, never by name, so parallel runs and the machine's own
    services are left alone.
    """

    def __init__(self, name: str, log_file: Path, *, log_lines: int = 40) -> None:
        self.name = name
        self.log_file = log_file
        self.log_lines = log_lines
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The PID of the running process, or None when it is not running."""
        return self._process.pid if self._process else None

    def start(
        self,
        args: Sequence[str],
        *,
        ready: Callable[[], bool],
        timeout: float,
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start ``args`` and poll ``ready`` until it holds.

        Raises:
            InfraError: the process exited first, or ``ready`` did not hold within ``timeout``
                seconds (the process is then stopped); the message ends with the log's tail.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
            )
        deadline = time.monotonic() + timeout
        while not ready():
            returncode = self._process.poll()
            if returncode is not None:
                self._process = None
                raise InfraError(f"{self.name} exited with {returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise InfraError(f"{self.name} was not ready within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the process (by its PID), wait for it, kill it if it lingers; reap it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log(self) -> str:
        """Return the tail of the log (for failure messages)."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-self.log_lines :])


class Server(Protocol):
    """Anything with ``start()`` (ready when it returns) and ``stop()`` (safe to repeat)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=Server)


@contextmanager
def running(server: ServerT) -> Iterator[ServerT]:
    """Start ``server``, yield it, and stop it however the block ends."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
