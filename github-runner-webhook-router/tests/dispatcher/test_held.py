"""The held-message journal on the embedded filesystem broker (real kombu transport).

Owners are told alive by a real `flock` on their lock file: a journal object is an owner
while open, and `close()` is what the kernel does when its process dies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dispatcher.support import drain, publish
from kombu.messaging import Producer
from runner_dispatcher.held import HeldJournal
from webhook_router.broker import connection

MESSAGE = {"labels": [], "url": "u"}


def held_copy(tmp_path: Path, flavour: str, journal: HeldJournal) -> Path:
    """Receive a message from the embedded broker and hold it, as a consumer does."""
    publish(None, tmp_path, flavour, json.dumps(MESSAGE), {"X-Process-Count": 2})
    with connection(None, tmp_path, 5.0) as conn:
        queue = conn.SimpleQueue(flavour)
        message = queue.get(timeout=5)
        entry = journal.hold(flavour, message)
        message.ack()  # the broker forgets it; only the journal has it now
        queue.close()
    return entry


def test_messages_held_by_a_dead_owner_are_put_back_once_marked_recovered(
    tmp_path: Path,
) -> None:
    dead = HeldJournal(tmp_path / "held")
    held_copy(tmp_path, "held-a", dead)
    dead.close()
    journal = HeldJournal(tmp_path / "held")

    with connection(None, tmp_path, 5.0) as conn:
        assert journal.recover(conn, 5.0) == 1
        assert journal.recover(conn, 5.0) == 0

    [back] = drain(None, tmp_path, "held-a")
    assert json.loads(back.payload) == MESSAGE
    assert back.headers["X-Process-Count"] == 2
    assert back.headers["X-Dispatcher-Recovered"] == 1
    assert [path.name for path in (tmp_path / "held").iterdir()] == ["owners"]


def test_messages_held_by_a_live_owner_are_left_alone_even_in_the_same_process(
    tmp_path: Path,
) -> None:
    owner = HeldJournal(tmp_path / "held")
    entry = held_copy(tmp_path, "held-b", owner)
    other = HeldJournal(tmp_path / "held")

    with connection(None, tmp_path, 5.0) as conn:
        assert other.recover(conn, 5.0) == 0
        assert owner.recover(conn, 5.0) == 0

    assert entry.exists()
    owner.release(entry)
    assert not entry.exists()


def test_a_live_owner_in_another_process_is_told_alive_by_its_lock(tmp_path: Path) -> None:
    """A second process holds the lock of an owner; killing it frees the entry."""
    folder = tmp_path / "held"
    owner = HeldJournal(folder)
    entry = held_copy(tmp_path, "held-c", owner)
    lock = folder / "owners" / f"{owner.owner}.lock"
    owner.close()
    lock.touch()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock)!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        journal = HeldJournal(folder)
        with connection(None, tmp_path, 5.0) as conn:
            assert journal.recover(conn, 5.0) == 0
            assert entry.exists()
            holder.kill()  # SIGKILL: the kernel drops its lock
            holder.wait()
            assert journal.recover(conn, 5.0) == 1
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert len(drain(None, tmp_path, "held-c")) == 1


@pytest.mark.parametrize("pid", [os.getpid(), 1], ids=["our own pid", "pid 1"])
def test_entries_named_after_a_live_pid_are_recovered_the_pid_says_nothing(
    tmp_path: Path, pid: int
) -> None:
    """A restarted container reuses PIDs (PID 1 every time): a PID is no proof of life."""
    journal = HeldJournal(tmp_path / "held")
    flavour = f"held-d-{pid}"  # the transport keeps some state per queue name in a process
    entry = held_copy(tmp_path, flavour, journal)
    entry.rename(entry.with_name(f"{pid}-{entry.name.split('-', 1)[1]}"))

    with connection(None, tmp_path, 5.0) as conn:
        assert journal.recover(conn, 5.0) == 1

    assert len(drain(None, tmp_path, flavour)) == 1


def test_a_publish_failure_during_recovery_leaves_the_entry_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = HeldJournal(tmp_path / "held")
    held_copy(tmp_path, "held-e", dead)
    dead.close()
    journal = HeldJournal(tmp_path / "held")
    real = Producer.publish

    def broker_hiccup(self: Producer, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker went away")

    monkeypatch.setattr(Producer, "publish", broker_hiccup)
    with connection(None, tmp_path, 5.0) as conn, pytest.raises(ConnectionError):
        journal.recover(conn, 5.0)
    monkeypatch.setattr(Producer, "publish", real)

    with connection(None, tmp_path, 5.0) as conn:
        assert journal.recover(conn, 5.0) == 1
    assert len(drain(None, tmp_path, "held-e")) == 1


def test_a_claim_left_by_a_recoverer_that_died_is_itself_recovered(tmp_path: Path) -> None:
    dead = HeldJournal(tmp_path / "held")
    entry = held_copy(tmp_path, "held-f", dead)
    dead.close()
    claimer = HeldJournal(tmp_path / "held")
    entry.rename(entry.with_suffix(f".claimed-{claimer.owner}"))  # claimed, then killed
    journal = HeldJournal(tmp_path / "held")

    with connection(None, tmp_path, 5.0) as conn:
        assert journal.recover(conn, 5.0) == 0  # the claimer lives: its claim is its own
        claimer.close()
        assert journal.recover(conn, 5.0) == 1

    assert len(drain(None, tmp_path, "held-f")) == 1
