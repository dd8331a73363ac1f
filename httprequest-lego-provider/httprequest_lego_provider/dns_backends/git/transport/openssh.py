"""Fetch and push over SSH with the git command line and one reused OpenSSH connection.

libgit2 opens a new SSH connection (key exchange, authentication) for every fetch and push.
Here ``git`` runs ``ssh`` with ``ControlMaster=auto``: the first transfer leaves a master
connection behind (for ``ControlPersist`` seconds of idleness), later ones open a channel on it.
A master that died is replaced by the next transfer (ssh removes a stale socket and becomes the
master itself). Each process has its own session directory, private to it (mode 0700), holding
the key (0600), the known_hosts and the control socket; ``close`` stops the master and removes
the directory. Host keys are checked against the configured known_hosts only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path

import pygit2
from pids import alive

from dns_backends.base import DnsBackendError, DnsBackendUnavailableError
from dns_backends.deadline import Deadline
from dns_backends.git.settings import GitSettings, RemoteSpec
from dns_backends.git.transport.cli import (
    GitResult,
    GitTransferError,
    PushRefusedError,
    for_log,
    git_environment,
    head_branch,
    push_compare_and_swap,
    run_git,
)

logger = logging.getLogger(__name__)

CONTROL_PERSIST_SECONDS = 300
CONNECT_TIMEOUT_SECONDS = 10
SERVER_ALIVE_INTERVAL_SECONDS = 15
STOP_TIMEOUT_SECONDS = 10
DEFAULT_BRANCH = "main"

# ssh binds the control socket at ``<ControlPath>.<16 random characters>`` first, and a unix
# socket path holds at most 107 bytes; keep well below.
MAX_CONTROL_PATH = 80
# Paths put into GIT_SSH_COMMAND and ssh options: no spaces, quotes or ``%`` (ssh tokens).
_SAFE_PATH = re.compile(r"[A-Za-z0-9/._-]+")
_SESSION_PREFIX = "lego-ssh-"
_FALLBACK_PARENT = Path("/tmp")  # noqa: S108 - a private directory made by mkdtemp


class OpenSshSession:
    """This process's key, known_hosts and control socket for one remote."""

    def __init__(self, settings: GitSettings) -> None:
        ssh = shutil.which("ssh")
        if ssh is None or _SAFE_PATH.fullmatch(ssh) is None:
            raise DnsBackendError(
                "the ssh command is not installed (install openssh-client, or set "
                "DJANGO_GIT_SSH_TRANSPORT=libgit2)"
            )
        self.directory = _private_directory(settings.workdir)
        self.control_path = self.directory / "s"
        key, known_hosts = self.directory / "id", self.directory / "known_hosts"
        stop_master = [ssh, "-F", "/dev/null", "-o", f"ControlPath={self.control_path}"]
        stop_master += ["-O", "exit", f"{settings.remote.user}@{settings.remote.host}"]
        # Registered before the key is written: whatever fails next, the key does not stay.
        self._finalizer = weakref.finalize(
            self, _end_session, os.getpid(), stop_master, self.directory
        )
        _write_private(key, settings.ssh_key or "")
        _write_private(known_hosts, settings.known_hosts or "")
        options = {
            "IdentitiesOnly": "yes",
            "IdentityAgent": "none",
            "BatchMode": "yes",
            "StrictHostKeyChecking": "yes",
            "UserKnownHostsFile": str(known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "UpdateHostKeys": "no",
            "ControlMaster": "auto",
            "ControlPath": str(self.control_path),
            "ControlPersist": str(CONTROL_PERSIST_SECONDS),
            "ConnectTimeout": str(CONNECT_TIMEOUT_SECONDS),
            "ServerAliveInterval": str(SERVER_ALIVE_INTERVAL_SECONDS),
            "ServerAliveCountMax": "3",
        }
        argv = [ssh, "-F", "/dev/null", "-i", str(key)]
        for name, value in options.items():
            argv += ["-o", f"{name}={value}"]
        # git runs GIT_SSH_COMMAND through the shell; every word is quoted, and every path in
        # it was made here (none contains anything that came from configuration).
        self.command = shlex.join(argv)

    def close(self) -> None:
        """Stop the master connection and remove the key, known_hosts and socket."""
        self._finalizer()


def _end_session(pid: int, stop_master: list[str], directory: Path) -> None:
    """Stop the master and remove the session's files; a forked child leaves them alone.

    Also run at interpreter exit for a session that was never closed.
    """
    if os.getpid() != pid:
        return
    if (directory / "s").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(  # noqa: S603 - an argument list made by the session
                stop_master,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=STOP_TIMEOUT_SECONDS,
                check=False,
            )
    shutil.rmtree(directory, ignore_errors=True)


def _private_directory(workdir: Path) -> Path:
    """Create this process's session directory (0700) in the work directory, or in /tmp.

    The work directory is used when its path is short and plain enough for ssh's options;
    directories of processes that are gone (killed before ``close``) are removed first.
    """
    prefix = f"{_SESSION_PREFIX}{os.getpid()}-"
    for parent in (workdir, _FALLBACK_PARENT):
        candidate = str(parent / f"{prefix}xxxxxxxx" / "s")
        if len(candidate) > MAX_CONTROL_PATH or _SAFE_PATH.fullmatch(candidate) is None:
            continue
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_abandoned(parent)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    raise DnsBackendError("no usable directory for the SSH control socket (check /tmp)")


def _remove_abandoned(parent: Path) -> None:
    """Remove the session directories of processes that no longer exist."""
    for entry in parent.glob(f"{_SESSION_PREFIX}*-*"):
        pid = entry.name[len(_SESSION_PREFIX) :].partition("-")[0]
        if not pid.isdigit() or alive(int(pid)) or not entry.is_dir():
            continue
        with contextlib.suppress(OSError):
            if entry.lstat().st_uid == os.getuid():
                shutil.rmtree(entry, ignore_errors=True)


def _write_private(path: Path, content: str) -> None:
    """Write a new file readable by this user only (whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)


class OpenSshNetwork:
    """Transfers for a :class:`~dns_backends.git.repository.CloneStore` through ``git`` and ssh."""

    def __init__(self, settings: GitSettings) -> None:
        self._remote = settings.remote
        self.session = OpenSshSession(settings)
        self._env = git_environment({"GIT_SSH_COMMAND": self.session.command})

    def default_branch(self, repo: pygit2.Repository, deadline: Deadline) -> str:
        """Ask the remote which branch its HEAD names (only when none is configured)."""
        result = self._run(
            ["ls-remote", "--symref", self._remote.url, "HEAD"], "list branches", deadline
        )
        return head_branch(result.stdout) or DEFAULT_BRANCH

    def fetch(self, repo: pygit2.Repository, refspec: str, depth: int, deadline: Deadline) -> None:
        """Fetch ``refspec`` into the clone (``depth`` 0: all commits missing from it)."""
        shallow = [f"--depth={depth}"] if depth else []
        self._run(
            [
                f"--git-dir={repo.path}",
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                *shallow,
                self._remote.url,
                refspec,
            ],
            "fetch",
            deadline,
        )

    def push(
        self,
        repo: pygit2.Repository,
        base: pygit2.Oid,
        commit: pygit2.Oid,
        ref: str,
        deadline: Deadline,
    ) -> None:
        """Push ``commit`` to ``ref`` if the remote's ``ref`` is still ``base``.

        Raises:
            PushRejectedError: the branch moved (a lost race).
            PushRefusedError: the remote refused the update (a hook, most likely).
            DnsBackendError: the host key or the SSH key was refused.
            DnsBackendUnavailableError: no verdict (unreachable, cut off): ask the remote.
            DeadlineExceededError: the push did not finish in time.
        """
        try:
            push_compare_and_swap(
                repo.path,
                self._remote.url,
                ref,
                str(base),
                str(commit),
                env=self._env,
                deadline=deadline,
                step="pushing to the git remote",
            )
        except PushRefusedError as exc:
            logger.warning("%s refused the push: %s", self._remote.display, exc.reason)
            raise
        except GitTransferError as exc:
            raise self._translate(exc.result, "push") from exc

    def close(self) -> None:
        """Stop the master connection and remove the session's files."""
        self.session.close()

    def _run(self, args: list[str], action: str, deadline: Deadline) -> GitResult:
        result = run_git(args, env=self._env, deadline=deadline, step=f"{action} (git remote)")
        if result.returncode != 0:
            raise self._translate(result, action)
        return result

    def _translate(self, result: GitResult, action: str) -> DnsBackendError:
        """Turn a failed transfer into a short public error; the details go to the log only."""
        detail = result.stderr.replace(self._remote.url, self._remote.display)
        logger.warning(
            "git %s with %s failed (%d): %s",
            action,
            self._remote.display,
            result.returncode,
            for_log(detail),
        )
        return translate_ssh_failure(self._remote, detail, action)


def translate_ssh_failure(remote: RemoteSpec, stderr: str, action: str) -> DnsBackendError:
    """Map what ssh and git printed to the errors the libgit2 transport gives for the same."""
    if "Host key verification failed" in stderr or "HOST IDENTIFICATION HAS CHANGED" in stderr:
        return DnsBackendError(
            f"refusing to connect to {remote.host}: its SSH host key is not in known_hosts or "
            "does not match it (check DJANGO_GIT_KNOWN_HOSTS)"
        )
    if "Permission denied (" in stderr or "Too many authentication failures" in stderr:
        return DnsBackendError(
            f"{remote.host} refused the SSH key for user {remote.user!r} "
            "(check DJANGO_GIT_SSH_KEY)"
        )
    missing = re.search(r"couldn't find remote ref refs/heads/(\S+)", stderr)
    if missing:
        return DnsBackendError(f"the git remote has no branch {missing.group(1)!r}")
    if "does not appear to be a git repository" in stderr:
        return DnsBackendError(
            f"{remote.host} has no git repository at {remote.path} (check DJANGO_GIT_REPO)"
        )
    if "Load key" in stderr and "invalid format" in stderr:
        return DnsBackendError("the SSH key cannot be read by ssh (check DJANGO_GIT_SSH_KEY)")
    return DnsBackendUnavailableError(f"the git remote {remote.host} is unreachable ({action})")
