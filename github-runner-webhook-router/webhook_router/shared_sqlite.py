"""A SQLite file shared by the worker processes of one machine (the router's and dispatcher's).

Used by the router's embedded dedup store and the dispatcher's store of taken jobs.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path


def prepare(path: Path, schema: Sequence[str], timeout_seconds: float) -> None:
    """Switch the file to WAL mode and run ``schema`` (idempotent DDL), one process at a time.

    Turning a new file to WAL takes an exclusive lock that SQLite does not wait for (the busy
    timeout does not apply), so workers starting together failed with "database is locked"; a
    lock file beside the database serialises them. Once the file is in WAL mode nothing is
    changed, so a process starting while others write takes no write lock.

    Raises:
        OSError: the folder or the lock file is not usable.
        sqlite3.Error: the database could not be set up.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".setup-lock")
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        with closing(sqlite3.connect(path, timeout=timeout_seconds, isolation_level=None)) as db:
            (mode,) = db.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            for statement in schema:
                db.execute(statement)


def connect(path: Path, timeout_seconds: float) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) that may cross threads.

    ``synchronous=NORMAL``: in WAL mode a commit survives a crash of the process, and only a
    power loss can drop the last ones; each store loses at most a duplicate's suppression (the
    router) or a GitHub call it saves (the dispatcher).
    """
    connection = sqlite3.connect(
        path, timeout=timeout_seconds, isolation_level=None, check_same_thread=False
    )
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection
