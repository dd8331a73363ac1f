"""Spawners start a runner for a job; the `command` spawner runs an operator's executable.

A spawner is anything with `spawn(request) -> None` that raises SpawnError on failure. The
command spawner is the external-provider model: the operator's program (LXD, OpenStack,
Kubernetes, ...) gets the job in its environment and as JSON on stdin, and its exit status
says whether a runner was started. No shell is involved: arguments are passed as a list.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from runner_dispatcher.contract import QueuedJob
from runner_dispatcher.errors import DispatcherError

logger = logging.getLogger(__name__)
# How much of a spawner's output goes into the log (its end, redacted).
OUTPUT_LOG_CHARS = 1000
# Token-like runs this long (GitHub tokens, base64 and hex keys) are secrets more often than
# not: never logged. `/` and `-` end a run, so paths, URLs and runner names stay readable.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9+=_]{32,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class SpawnError(DispatcherError):
    """The spawner did not start a runner; the job is requeued."""


@dataclass(frozen=True)
class SpawnRequest:
    """What a spawner is told about the runner to start.

    Attributes:
        job: the job the runner is for.
        flavour: the queue the job came from (the runner application's name).
        runner_name: a unique name for the runner (also the JIT config's runner name).
        runner_labels: the labels the runner should carry (a JIT config carries them already).
        attempt: 1 for the first attempt at this job, 2 after one requeue, and so on.
        encoded_jit_config: GitHub's just-in-time configuration (`run.sh --jitconfig VALUE`),
            when the dispatcher has credentials and DISPATCHER_JIT_CONFIG is on. A secret.
        runner_id: GitHub's id of that JIT runner (deleted again when the spawn fails).
    """

    job: QueuedJob
    flavour: str
    runner_name: str
    runner_labels: tuple[str, ...]
    attempt: int
    encoded_jit_config: str | None = None
    runner_id: int | None = None

    def environment(self) -> dict[str, str]:
        """The job's details as DISPATCHER_* variables (everything but the JIT config)."""
        job = self.job
        return {
            "DISPATCHER_JOB_URL": job.url,
            "DISPATCHER_JOB_ID": str(job.job_id),
            "DISPATCHER_RUN_ID": "" if job.run_id is None else str(job.run_id),
            "DISPATCHER_RUN_ATTEMPT": "" if job.run_attempt is None else str(job.run_attempt),
            "DISPATCHER_REPOSITORY": job.repository,
            "DISPATCHER_JOB_LABELS": ",".join(sorted(job.labels)),
            "DISPATCHER_FLAVOUR": self.flavour,
            "DISPATCHER_RUNNER_NAME": self.runner_name,
            "DISPATCHER_RUNNER_LABELS": ",".join(self.runner_labels),
            "DISPATCHER_ATTEMPT": str(self.attempt),
            "DISPATCHER_HAS_JIT_CONFIG": "1" if self.encoded_jit_config else "0",
        }

    def document(self) -> dict[str, object]:
        """The JSON object written to a command spawner's stdin, JIT config included."""
        job = self.job
        return {
            "job": {
                "url": job.url,
                "id": job.job_id,
                "run_id": job.run_id,
                "run_attempt": job.run_attempt,
                "repository": job.repository,
                "labels": sorted(job.labels),
            },
            "flavour": self.flavour,
            "runner_name": self.runner_name,
            "runner_labels": list(self.runner_labels),
            "attempt": self.attempt,
            "encoded_jit_config": self.encoded_jit_config,
        }


class Spawner(Protocol):
    """Start a runner for one job; called from several consumer threads at once."""

    def spawn(self, request: SpawnRequest) -> None:
        """Return once the runner is started (or its start is durably under way).

        Raises:
            SpawnError: no runner was started; the dispatcher requeues the job.
        """


class CommandSpawner:
    """Run an executable per job; exit status 0 means a runner was started.

    The program gets the job as DISPATCHER_* environment variables and, on stdin, the JSON of
    `SpawnRequest.document()`, the only place the JIT config appears (environment variables
    are readable by other processes of the same user). Its environment is PATH plus the
    variables the operator passes through; the dispatcher's credentials never reach it. A
    program still running after `timeout` seconds is killed with its process group.
    """

    def __init__(self, argv: Sequence[str], timeout: float, inherited: Mapping[str, str]) -> None:
        self._argv = list(argv)
        self._timeout = timeout
        self._inherited = dict(inherited)

    def spawn(self, request: SpawnRequest) -> None:
        """Run the program for `request`.

        Only the program itself is waited for: whatever it starts in the background (the
        runner) may keep running, and may keep its output open, after it exits. So output
        goes to a temporary file, never a pipe read to its end, and the wait is bounded.

        Raises:
            SpawnError: it could not start, timed out, or exited with a non-zero status.
        """
        stdin = json.dumps(request.document()).encode()
        with tempfile.TemporaryFile() as output:
            try:
                process = subprocess.Popen(  # noqa: S603 - argv from the operator, no shell
                    self._argv,
                    stdin=subprocess.PIPE,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env={**self._inherited, **request.environment()},
                    start_new_session=True,  # its own process group, killed as one on timeout
                    close_fds=True,
                )
            except (OSError, ValueError) as exc:
                detail = exc.strerror if isinstance(exc, OSError) else None
                raise SpawnError(f"spawner could not start: {detail or exc!r}") from exc
            try:
                _write_stdin(process, stdin)
                status = process.wait(timeout=self._timeout)
            except subprocess.TimeoutExpired as exc:
                _kill_group(process)
                raise SpawnError(
                    f"spawner still running after {self._timeout:g} s: killed"
                ) from exc
            except BaseException:
                _kill_group(process)
                raise
            if status != 0:
                logger.warning(
                    "spawner exited with %s for job %s; the end of its output: %s",
                    status,
                    request.job.url,
                    _redacted_tail(output, request),
                )
                raise SpawnError(f"spawner exited with status {status}")
            tail = _redacted_tail(output, request)
            if tail:
                logger.info("spawner output for job %s: %s", request.job.url, tail)


def _write_stdin(process: subprocess.Popen[bytes], data: bytes) -> None:
    """Hand the request to the program; one that exits without reading it is no error.

    The document is a few kilobytes, within a pipe's buffer (64 KiB on Linux): the write
    never waits for the program to read.
    """
    assert process.stdin is not None  # noqa: S101 - opened with stdin=PIPE
    try:
        process.stdin.write(data)
        process.stdin.close()
    except BrokenPipeError:
        pass


def _redacted_tail(output: IO[bytes], request: SpawnRequest) -> str:
    """The last OUTPUT_LOG_CHARS of the program's output, without secrets.

    The JIT configuration (a `set -x` script would print it) and any long token-like run of
    characters are replaced, and control characters dropped, before anything is logged.
    """
    output.seek(0, os.SEEK_END)
    size = output.tell()
    output.seek(max(0, size - OUTPUT_LOG_CHARS))
    text = output.read().decode("utf-8", "replace")
    if request.encoded_jit_config:
        text = text.replace(request.encoded_jit_config, "[redacted]")
    text = _TOKEN_LIKE.sub("[redacted]", text)
    return _CONTROL.sub(" ", text).strip()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the program's process group and reap the program (bounded: SIGKILL is final)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def spawner_environment(pass_env: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a command spawner inherits: PATH and the variables named in `pass_env`.

    Nothing else: the dispatcher's own environment holds the GitHub credentials and the broker
    URL's password, which a spawner has no use for.
    """
    inherited = {"PATH": environ.get("PATH", "/usr/bin:/bin")}
    inherited.update({name: environ[name] for name in pass_env if name in environ})
    return inherited
