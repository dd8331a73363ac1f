"""The held-message journal on the embedded filesystem broker (real kombu transport)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dispatcher.support import drain, publish
from runner_dispatcher.held import HeldJournal
from webhook_router.broker import connection


def dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def held_copy(tmp_path: Path, flavour: str, journal: HeldJournal) -> Path:
    """Receive a message from the embedded broker and hold it, as a consumer does."""
    publish(
        None, tmp_path, flavour, json.dumps({"labels": [], "url": "u"}), {"X-Process-Count": 2}
    )
    with connection(None, tmp_path, 5.0) as conn:
        queue = conn.SimpleQueue(flavour)
        message = queue.get(timeout=5)
        entry = journal.hold(flavour, message)
        message.ack()  # the broker forgets it; only the journal has it now
        queue.close()
    return entry


def test_messages_held_by_a_dead_process_are_put_back_once(tmp_path: Path) -> None:
    journal = HeldJournal(tmp_path / "held")
    entry = held_copy(tmp_path, "held-a", journal)
    orphan = entry.with_name(f"{dead_pid()}-{entry.name.split('-', 1)[1]}")
    entry.rename(orphan)

    with connection(None, tmp_path, 5.0) as conn:
        assert journal.recover(conn, 5.0) == 1
        assert journal.recover(conn, 5.0) == 0

    [back] = drain(None, tmp_path, "held-a")
    assert json.loads(back.payload) == {"labels": [], "url": "u"}
    assert back.headers["X-Process-Count"] == 2
    assert list((tmp_path / "held").iterdir()) == []


def test_messages_held_by_a_live_process_are_left_alone(tmp_path: Path) -> None:
    journal = HeldJournal(tmp_path / "held")
    entry = held_copy(tmp_path, "held-b", journal)
    assert entry.name.startswith(f"{os.getpid()}-")

    with connection(None, tmp_path, 5.0) as conn:
        assert journal.recover(conn, 5.0) == 0

    assert entry.exists()
    journal.release(entry)
    assert not entry.exists()
