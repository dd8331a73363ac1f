"""The git command line, for the transfers that libgit2 does not do well enough here.

libgit2 opens a new SSH connection for every fetch and push and never runs the receiving
repository's hooks on a local path; ``git fetch`` / ``git push`` reuse an OpenSSH master
connection and always go through ``git receive-pack``. Commits are still built in-process with
pygit2: only transfers use this module. Every command is an argument list (never a shell string)
run with a clean environment, in its own process group so that a timeout stops all of it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dns_backends.base import DnsBackendError
from dns_backends.deadline import Deadline, default_deadline
from dns_backends.git.transport.process import CommandTimeoutError, run_command

logger = logging.getLogger(__name__)

MAX_REASON_LENGTH = 200

# Variables that would point git at another repository, object store or configuration.
_REPOSITORY_VARIABLES = re.compile(
    r"GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|NAMESPACE"
    r"|COMMON_DIR|CEILING_DIRECTORIES|DISCOVERY_ACROSS_FILESYSTEM|SSH|SSH_COMMAND|SSH_VARIANT"
    r"|PROXY_COMMAND|ASKPASS|EXEC_PATH|QUARANTINE_PATH|CONFIG_PARAMETERS|CONFIG_COUNT"
    r"|CONFIG_KEY_\d+|CONFIG_VALUE_\d+|PUSH_OPTION_COUNT|PUSH_OPTION_\d+|PROTOCOL"
    r"|TRACE\w*|REFLOG_ACTION)"
)
_CONTROL_CHARACTERS = re.compile(r"(?:\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x1f\x7f])+")
MAX_LOG_LENGTH = 600


class PushRejectedError(Exception):
    """The remote branch moved since the commit's parent was read: re-apply on the new tip."""


class PushRefusedError(Exception):
    """The receiving repository refused the update (a hook, a lock, or a concurrent update).

    ``reason`` is git's status for the ref followed by what the remote printed, one line.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GitTransferError(Exception):
    """A transfer failed without a verdict from the remote; ``result`` says what git printed."""

    def __init__(self, result: GitResult) -> None:
        super().__init__(main_line(result.stderr))
        self.result = result


@dataclass(frozen=True)
class GitResult:
    """What one git command returned; ``stderr`` is decoded (invalid bytes replaced)."""

    returncode: int
    stdout: str
    stderr: str


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment without variables that redirect git, plus ``extra``.

    Messages are asked for in English (``LC_ALL=C``) because failures are told apart by them.
    """
    environ = {
        name: value
        for name, value in os.environ.items()
        if not _REPOSITORY_VARIABLES.fullmatch(name)
    }
    environ.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    environ.update(extra or {})
    return environ


def run_git(
    args: Sequence[str], *, env: Mapping[str, str], deadline: Deadline, step: str
) -> GitResult:
    """Run ``git <args>`` (``step`` says what for); one that outlives the deadline is killed.

    The command, its children (ssh, a local ``receive-pack`` and its hooks) are stopped
    together: they run in a process group of their own (see :mod:`.process`, which also
    starts it cheaply under gevent).

    Raises:
        DnsBackendError: the git command is not installed.
        DeadlineExceededError: the deadline had passed, or passed before the command finished.
    """
    timeout = deadline.check(step)
    try:
        completed = run_command(["git", *args], env, timeout)
    except FileNotFoundError as exc:
        raise DnsBackendError(
            "the git command is not installed on the provider's host (install git)"
        ) from exc
    except CommandTimeoutError as exc:
        logger.warning("git stopped: %s did not finish within the request's deadline", step)
        raise deadline.exceeded(step) from exc
    return GitResult(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )


def push_compare_and_swap(
    git_dir: str,
    url: str,
    ref: str,
    base: str,
    commit: str,
    *,
    env: Mapping[str, str],
    deadline: Deadline | None = None,
    step: str = "pushing to the git repository",
) -> GitResult:
    """Push ``commit`` to ``ref`` at ``url`` only if the remote's ``ref`` is still ``base``.

    The lease is checked against what the remote advertises, and the remote's update is made
    with that old value under its lock, so a writer that got in between makes this fail.

    Returns:
        The command's result when the push was accepted.

    Raises:
        PushRejectedError: the branch no longer points at ``base`` (a lost race).
        PushRefusedError: the remote refused the update (hook, lock, concurrent update).
        GitTransferError: no verdict for the ref (connection, authentication, ...).
        DeadlineExceededError: the push did not finish in time (it may still land: the remote
            moves the branch whole or not at all).
    """
    result = run_git(
        [
            f"--git-dir={git_dir}",
            "push",
            "--porcelain",
            "--no-verify",
            f"--force-with-lease={ref}:{base}",
            url,
            f"{commit}:{ref}",
        ],
        env=env,
        deadline=deadline or default_deadline(),
        step=step,
    )
    status = _ref_status(result.stdout, ref)
    if status is None:
        raise GitTransferError(result)
    flag, summary = status
    if flag in (" ", "+", "*", "="):
        return result
    if "stale info" in summary or "non-fast-forward" in summary or "fetch first" in summary:
        raise PushRejectedError
    raise PushRefusedError(refusal_reason(summary, result.stderr))


def _ref_status(stdout: str, ref: str) -> tuple[str, str] | None:
    """Return the flag and summary ``git push --porcelain`` printed for ``ref``, if any."""
    for line in stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and len(fields[0]) == 1 and fields[1].endswith(f":{ref}"):
            return fields[0], fields[2]
    return None


def refusal_reason(summary: str, stderr: str) -> str:
    """Return git's reason for a refused ref and the remote's own words, on one short line.

    ``[remote rejected] (pre-receive hook declined)`` and ``remote: zone freeze in effect``
    become ``pre-receive hook declined: zone freeze in effect``.
    """
    reason = summary.strip()
    if reason.startswith("[") and "(" in reason:
        reason = reason[reason.index("(") + 1 :].removesuffix(")")
    remote_lines = [
        line[len("remote:") :].strip()
        for line in stderr.splitlines()
        if line.startswith("remote:") and line[len("remote:") :].strip()
    ]
    text = ": ".join([reason, "; ".join(remote_lines)] if remote_lines else [reason])
    return clean(text)[:MAX_REASON_LENGTH]


def clean(text: str) -> str:
    """Return ``text`` on one line: terminal escapes and control characters become spaces."""
    return " ".join(_CONTROL_CHARACTERS.sub(" ", text).split())


def main_line(stderr: str) -> str:
    """Return the line of git's output that says what failed (its first ``fatal:``/``error:``)."""
    lines = [clean(line) for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line[:MAX_REASON_LENGTH]
    return lines[-1][:MAX_REASON_LENGTH] if lines else ""


def for_log(stderr: str) -> str:
    """Return everything git printed on one line, for the log."""
    return " | ".join(clean(line) for line in stderr.splitlines() if line.strip())[:MAX_LOG_LENGTH]


def head_branch(ls_remote_output: str) -> str | None:
    """Return the branch ``git ls-remote --symref <url> HEAD`` says HEAD names, if any."""
    for line in ls_remote_output.splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            return target.removeprefix("ref: refs/heads/")
    return None
