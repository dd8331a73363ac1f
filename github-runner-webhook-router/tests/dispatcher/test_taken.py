"""Lifecycle events without a broker: the event contract, the setting, the taken-jobs store.

Events are built by the router's own `message.event_text` from recorded GitHub payloads
(tests/fixtures); the store is the real SQLite file, opened by real separate processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import job_body
from runner_dispatcher.contract import LifecycleEvent, RejectedMessage, parse_event
from runner_dispatcher.errors import ConfigError
from runner_dispatcher.settings import Settings
from runner_dispatcher.taken import FILE_NAME, TakenStore, TakenStoreError
from webhook_router.message import LIFECYCLE_ACTIONS, event_text
from webhook_router.payload import parse_job

ROOT = Path(__file__).parent.parent.parent
MINIMAL = {"DISPATCHER_FLAVOURS": "small", "DISPATCHER_SPAWN_COMMAND": "/usr/bin/true"}
FIXTURES = {
    "waiting": "workflow_job.waiting.json",
    "in_progress": "workflow_job.in_progress.json",
    "completed": "workflow_job.completed.json",
}


@pytest.mark.parametrize("action", sorted(LIFECYCLE_ACTIONS))
def test_the_routers_events_parse_and_only_a_runners_actions_mean_taken(action: str) -> None:
    body = job_body(["x64"], action, job_id=77, run_attempt=3, fixture=FIXTURES[action])
    text = event_text(parse_job(body, "application/json"), "small")

    event = parse_event(text)

    assert event == LifecycleEvent(action=action, job_id=77, run_attempt=3)
    assert event.taken == (action != "waiting")


GOOD = {"action": "in_progress", "job_id": 5, "run_attempt": 1}


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        json.dumps([GOOD]),
        json.dumps({**GOOD, "action": "queued"}),  # the job queue's, never an event
        json.dumps({**GOOD, "action": None}),
        json.dumps({**GOOD, "job_id": "5"}),
        json.dumps({**GOOD, "job_id": True}),
        json.dumps({**GOOD, "job_id": 0}),
        json.dumps({**GOOD, "job_id": 2**63}),
        json.dumps({**GOOD, "run_attempt": None}),
        json.dumps({key: value for key, value in GOOD.items() if key != "run_attempt"}),
        b"\xff",
        None,
    ],
)
def test_malformed_events_are_rejected(payload: object) -> None:
    with pytest.raises(RejectedMessage) as caught:
        parse_event(payload)

    assert caught.value.reason == "malformed"


def test_lifecycle_events_are_off_unless_enabled() -> None:
    assert Settings.from_env(MINIMAL).lifecycle_events is False
    enabled = Settings.from_env({**MINIMAL, "DISPATCHER_LIFECYCLE_EVENTS": "true"})
    assert enabled.lifecycle_events is True
    with pytest.raises(ConfigError, match="DISPATCHER_LIFECYCLE_EVENTS"):
        Settings.from_env({**MINIMAL, "DISPATCHER_LIFECYCLE_EVENTS": "sometimes"})


def test_a_flavour_named_like_another_flavours_events_queue_is_refused_with_events_on() -> None:
    env = {**MINIMAL, "DISPATCHER_FLAVOURS": "small,small.events"}

    assert Settings.from_env(env).flavours == ("small", "small.events")  # events off: fine
    with pytest.raises(ConfigError, match=r"'small\.events' is the lifecycle events queue"):
        Settings.from_env({**env, "DISPATCHER_LIFECYCLE_EVENTS": "true"})


def test_a_record_is_for_one_job_attempt(tmp_path: Path) -> None:
    store = TakenStore(tmp_path / "taken.sqlite3")

    store.record(10, 1, "in_progress")
    store.record(10, 1, "completed")

    assert store.taken(10, 1) == "completed"
    assert store.taken(10, 2) is None  # a re-run's attempt is another job attempt
    assert store.taken(11, 1) is None
    store.close()


def test_records_expire(tmp_path: Path) -> None:
    now = [1000.0]
    store = TakenStore(tmp_path / "taken.sqlite3", retention_seconds=60, clock=lambda: now[0])
    store.record(10, 1, "in_progress")

    now[0] = 1060.0
    assert store.taken(10, 1) == "in_progress"
    now[0] = 1060.5
    assert store.taken(10, 1) is None
    store.close()


def test_purging_keeps_the_newest_records_within_the_bound(tmp_path: Path) -> None:
    now = [1000.0]
    store = TakenStore(
        tmp_path / "taken.sqlite3", retention_seconds=60, max_rows=3, clock=lambda: now[0]
    )
    for job_id in range(1, 6):
        now[0] += 1
        store.record(job_id, 1, "in_progress")

    store.purge()

    assert [store.taken(job_id, 1) is not None for job_id in range(1, 6)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    now[0] += 59  # job 3's record (at 1003) is now past the retention, 4 and 5 are not
    store.purge()
    now[0] -= 59
    assert [store.taken(job_id, 1) is not None for job_id in range(3, 6)] == [False, True, True]
    store.close()


RECORD_IN_A_PROCESS = """
import sys
from pathlib import Path
from runner_dispatcher.taken import TakenStore

store = TakenStore(Path(sys.argv[1]))
store.record(int(sys.argv[2]), 1, "in_progress")
store.close()
"""


def test_processes_opening_the_store_together_all_record_and_each_sees_the_others(
    tmp_path: Path,
) -> None:
    """Dispatchers of one machine start together and share the file: none may fail."""
    path = tmp_path / "state" / "taken.sqlite3"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RECORD_IN_A_PROCESS, str(path), str(job_id)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for job_id in range(1, 9)
    ]
    errors = [child.communicate(timeout=60)[1] for child in children]

    assert [child.returncode for child in children] == [0] * 8, errors
    store = TakenStore(path)
    assert all(store.taken(job_id, 1) == "in_progress" for job_id in range(1, 9))
    store.close()


def test_opening_a_damaged_store_raises_its_own_error(tmp_path: Path) -> None:
    """The dispatcher then refuses to start, naming the state folder."""
    path = tmp_path / "taken.sqlite3"
    TakenStore(path).close()
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    path.write_bytes(b"not a database" * 1000)
    with pytest.raises(TakenStoreError):
        TakenStore(path)

    env = {
        **MINIMAL,
        "PATH": "/usr/bin:/bin",
        "DISPATCHER_LIFECYCLE_EVENTS": "true",
        "DISPATCHER_STATE_DIR": str(tmp_path),
        "DISPATCHER_HEALTH_PORT": "0",
    }
    (tmp_path / FILE_NAME).write_bytes(path.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "runner_dispatcher"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: DISPATCHER_STATE_DIR: cannot open "), result.stderr


def test_reads_and_writes_of_a_damaged_store_raise_its_own_error(tmp_path: Path) -> None:
    """The callers turn it into "unknown" (reads: GitHub decides) or a requeued event."""
    path = tmp_path / "taken.sqlite3"
    store = TakenStore(path)  # opened while sound; no thread has used it yet
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    path.write_bytes(b"not a database" * 1000)

    with pytest.raises(TakenStoreError):
        store.taken(1, 1)
    with pytest.raises(TakenStoreError):
        store.record(1, 1, "in_progress")
    store.close()
