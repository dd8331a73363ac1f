"""A real OpenSSH server on 127.0.0.1 for the git backend's SSH tests.

It runs as the current user (root here) with its own configuration, host key and authorized
key, all in a temporary directory; a git remote is then any bare repository path on this
machine, reached as ``git+ssh://root@127.0.0.1:<port>/<path>``. It fails loudly when sshd
cannot start: the SSH transport is the product's main path and must not go untested.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port

SSHD = "/usr/sbin/sshd"  # sshd insists on an absolute path (it re-executes itself)
STARTUP_SECONDS = 15


@dataclass(frozen=True)
class SshServer:
    """A running sshd and the client material to reach it."""

    port: int
    user: str
    client_key: str
    known_hosts: str
    directory: Path

    def url(self, repo: Path, branch: str | None = "main") -> str:
        """Return the ``DJANGO_GIT_REPO`` value for the bare repository at ``repo``."""
        suffix = f"@{branch}" if branch else ""
        return f"git+ssh://{self.user}@127.0.0.1:{self.port}{repo}{suffix}"

    def host_line(self, public_key: str) -> str:
        """Return a known_hosts line claiming ``public_key`` for this server."""
        return _host_line(self.port, public_key)

    def keygen(self, name: str) -> tuple[str, str]:
        """Create an ed25519 key pair in the server's directory; return (private, public)."""
        path = self.directory / name
        _keygen(path)
        return path.read_text(), path.with_suffix(".pub").read_text()


def _host_line(port: int, public_key: str) -> str:
    key_type, key = public_key.split()[:2]
    return f"[127.0.0.1]:{port} {key_type} {key}\n"


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )


def _write_config(directory: Path, port: int) -> Path:
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\n"
        f"Port {port}\n"
        f"HostKey {directory / 'host_key'}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
        f"PidFile {directory / 'sshd.pid'}\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PermitRootLogin prohibit-password\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UseDNS no\n"
        "MaxStartups 100:30:200\n"
        "LogLevel VERBOSE\n"
    )
    return config


def _wait_for_banner(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Return once sshd greets on ``port``; raise with its log if it died or never did."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if conn.recv(64).startswith(b"SSH-2.0"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not start on port {port}:\n{log.read_text()}")


@contextmanager
def running_sshd(directory: Path) -> Iterator[SshServer]:
    """Run sshd until the block ends; the client key is authorised for the current user."""
    if not os.path.exists(SSHD):
        raise RuntimeError(f"{SSHD} is missing: install openssh-server (scripts/bootstrap)")
    _keygen(directory / "host_key")
    _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    port = free_port()
    config = _write_config(directory, port)
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
    log = directory / "sshd.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log_file)
    try:
        _wait_for_banner(process, port, log)
        yield SshServer(
            port=port,
            user=getpass.getuser(),
            client_key=(directory / "client_key").read_text(),
            known_hosts=_host_line(port, (directory / "host_key.pub").read_text()),
            directory=directory,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
