"""The command spawner runs a real executable: environment, stdin, exit status, time limit."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest
from runner_dispatcher.contract import QueuedJob
from runner_dispatcher.spawner import (
    CommandSpawner,
    SpawnError,
    SpawnRequest,
    spawner_environment,
)

JOB = QueuedJob(
    labels=frozenset({"x64", "large"}),
    url="https://api.github.com/repos/o/r/actions/jobs/42",
    owner="o",
    repo="r",
    job_id=42,
    run_id=7,
    run_attempt=1,
    repository="o/r",
)
REQUEST = SpawnRequest(JOB, "large", "large-42-1-abc", ("self-hosted", "x64"), 1, "SECRETJIT")

RECORDER = """
import json, os, sys
document = json.load(sys.stdin)
env = {key: value for key, value in os.environ.items()}
with open(sys.argv[1], "w") as out:
    json.dump({"stdin": document, "env": env, "argv": sys.argv[1:]}, out)
sys.exit(int(sys.argv[2]))
"""


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spawn.py"
    path.write_text(body)
    return path


def test_job_details_come_as_environment_and_json_on_stdin_with_the_jit_config_on_stdin_only(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    spawner = CommandSpawner(
        [sys.executable, str(script(tmp_path, RECORDER)), str(out), "0"],
        timeout=30,
        inherited=spawner_environment(["KEEP_ME"], {"PATH": "/bin", "KEEP_ME": "1", "X": "2"}),
    )

    spawner.spawn(REQUEST)

    seen = json.loads(out.read_text())
    env = seen["env"]
    assert env["DISPATCHER_JOB_URL"] == JOB.url
    assert env["DISPATCHER_JOB_ID"] == "42"
    assert env["DISPATCHER_RUN_ID"] == "7"
    assert env["DISPATCHER_REPOSITORY"] == "o/r"
    assert env["DISPATCHER_JOB_LABELS"] == "large,x64"
    assert env["DISPATCHER_FLAVOUR"] == "large"
    assert env["DISPATCHER_RUNNER_NAME"] == "large-42-1-abc"
    assert env["DISPATCHER_RUNNER_LABELS"] == "self-hosted,x64"
    assert env["DISPATCHER_HAS_JIT_CONFIG"] == "1"
    assert env["KEEP_ME"] == "1"
    assert "X" not in env
    assert "SECRETJIT" not in json.dumps(env)
    assert seen["stdin"]["encoded_jit_config"] == "SECRETJIT"
    assert seen["stdin"]["job"]["id"] == 42
    assert seen["stdin"]["runner_labels"] == ["self-hosted", "x64"]


def test_dispatchers_own_secrets_never_reach_the_spawner() -> None:
    inherited = spawner_environment(
        [], {"PATH": "/usr/bin", "GITHUB_TOKEN": "t", "MONGODB_DB_CONNECT_STRING": "u"}
    )

    assert inherited == {"PATH": "/usr/bin"}


def test_non_zero_exit_status_is_a_spawn_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    spawner = CommandSpawner(
        [sys.executable, str(script(tmp_path, RECORDER)), str(out), "3"], 30, {}
    )

    with pytest.raises(SpawnError, match="status 3"):
        spawner.spawn(REQUEST)


def test_missing_executable_is_a_spawn_failure(tmp_path: Path) -> None:
    spawner = CommandSpawner([str(tmp_path / "nothing-here")], 30, {})

    with pytest.raises(SpawnError, match="could not start"):
        spawner.spawn(REQUEST)


def test_arguments_are_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    spawner = CommandSpawner(
        [sys.executable, str(script(tmp_path, RECORDER)), str(out), "0", "$(touch pwned)", ";"],
        30,
        {},
    )

    spawner.spawn(REQUEST)

    assert json.loads(out.read_text())["argv"][2:] == ["$(touch pwned)", ";"]
    assert not Path("pwned").exists()


def test_spawner_running_past_the_time_limit_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    body = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open({str(pid_file)!r}, "w").write(str(child.pid))
time.sleep(60)
"""
    spawner = CommandSpawner([sys.executable, str(script(tmp_path, body))], 3.0, {})

    with pytest.raises(SpawnError, match="killed"):
        spawner.spawn(REQUEST)

    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the spawner's child survived"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its dead parent's reaper) counts as gone.
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


def test_demo_spawner_logs_and_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    root = Path(__file__).parent.parent.parent
    spawner = CommandSpawner(
        [sys.executable, "-m", "runner_dispatcher.demo_spawner"],
        30,
        {"PATH": os.environ["PATH"], "PYTHONPATH": str(root)},
    )

    with caplog.at_level(logging.DEBUG, logger="runner_dispatcher.spawner"):
        spawner.spawn(REQUEST)

    assert "demo spawner: would start runner large-42-1-abc" in caplog.text
    assert "JIT config given" in caplog.text


@pytest.mark.parametrize(
    "start",
    [
        "sleep 30 & echo $! > {pid}",
        "setsid sh -c 'echo $$ > {pid}; exec sleep 30' &",
    ],
    ids=["background child", "background child in its own session"],
)
def test_a_spawner_that_starts_the_runner_in_the_background_and_exits_0_succeeds_at_once(
    tmp_path: Path, start: str
) -> None:
    """The child keeps the spawner's output open for its life: only the program is waited.

    The time limit (10 s) is far below the child's life (30 s): waiting for the output to
    close would fail the spawn by timeout, or block until the child ends.
    """
    pid_file = tmp_path / "child.pid"
    command = start.format(pid=pid_file) + "\nexit 0"
    spawner = CommandSpawner(["sh", "-c", command], 10.0, {"PATH": os.environ["PATH"]})
    try:
        spawner.spawn(REQUEST)
    finally:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the background child never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert _alive(child)  # still running: the spawn returned before it ended
        os.kill(child, 9)


def test_a_failed_spawners_output_is_logged_as_a_bounded_tail_without_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A `set -x` script prints the JIT config it was given; long token-like text too."""
    token = "ghp_" + "A1b2" * 9
    body = f"""
import json, sys
config = json.load(sys.stdin)["encoded_jit_config"]
print("x" * 100_000)
print("+ ./run.sh --jitconfig", config)
print("+ curl -H 'Authorization: token {token}'")
sys.exit(2)
"""
    spawner = CommandSpawner([sys.executable, str(script(tmp_path, body))], 30, {})

    with (
        caplog.at_level(logging.INFO, logger="runner_dispatcher.spawner"),
        pytest.raises(SpawnError, match="status 2"),
    ):
        spawner.spawn(REQUEST)

    assert "--jitconfig [redacted]" in caplog.text
    assert "SECRETJIT" not in caplog.text
    assert token not in caplog.text
    assert len(caplog.text) < 2000


def test_a_job_field_a_process_cannot_carry_is_a_spawn_failure_not_a_crash() -> None:
    """Belt and braces behind the contract's control-character check: a NUL in the env."""
    job = QueuedJob(frozenset(), JOB.url, "o", "r", 42, repository="o/r\x00x")
    spawner = CommandSpawner(["true"], 30, {"PATH": os.environ["PATH"]})

    with pytest.raises(SpawnError, match="could not start"):
        spawner.spawn(SpawnRequest(job, "large", "large-42-1-abc", ("x64",), 1))
