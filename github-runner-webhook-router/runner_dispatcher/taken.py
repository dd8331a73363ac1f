"""Job attempts a runner took, learnt from lifecycle events, shared by a machine's dispatchers.

A broker hands each event of `<flavour>.events` to one consumer only, but the job it is about
may be held by any dispatcher process: so what an event says is written to a SQLite file in
the state folder, which every dispatcher of the machine reads before (re)spawning. WAL mode
lets readers and the one writer proceed together; rows expire and their number is bounded,
since forgetting one only costs the GitHub call that would have been made anyway. Dispatchers
on other machines do not see this file: for them the GitHub check before spawning (and the
pickup polling) stays what tells them a job was taken.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from webhook_router import shared_sqlite

from runner_dispatcher.errors import DispatcherError

FILE_NAME = "dispatcher-taken.sqlite3"
# GitHub cancels a job still queued after 24 hours: no copy of its message is useful longer.
RETENTION_SECONDS = 86400.0
# Enough for a day of a busy organisation; past it the oldest are forgotten (GitHub is asked).
MAX_ROWS = 200_000
# Old rows are purged once every this many records, so the file needs no cron job.
PURGE_EVERY = 256
# Reads happen on the job path: a locked or slow file must never hold a job up for long.
STORE_TIMEOUT_SECONDS = 2.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS taken ("
    " job_id INTEGER NOT NULL, run_attempt INTEGER NOT NULL,"
    " action TEXT NOT NULL, recorded REAL NOT NULL,"
    " PRIMARY KEY (job_id, run_attempt))",
    "CREATE INDEX IF NOT EXISTS taken_recorded ON taken(recorded)",
)


class TakenStoreError(DispatcherError):
    """The store could not be opened or written; reads never raise it (they say unknown)."""


class TakenStore:
    """Rows `(job_id, run_attempt) -> action` with the time they were recorded.

    Safe for several threads (one connection each) and processes (SQLite's file locks). Only
    `in_progress` and `completed` are recorded: a `waiting` job has no runner yet.

    Args:
        path: the SQLite file (created with its table on first use).
        retention_seconds: how long a record counts.
        max_rows: the most records kept (the newest).
        clock: Unix time now (tests pass their own).
    """

    def __init__(
        self,
        path: Path,
        retention_seconds: float = RETENTION_SECONDS,
        max_rows: int = MAX_ROWS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._retention = retention_seconds
        self._max_rows = max_rows
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._records = 0
        try:
            shared_sqlite.prepare(path, _SCHEMA, STORE_TIMEOUT_SECONDS)
        except (OSError, sqlite3.Error) as exc:
            raise TakenStoreError(f"cannot open {path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Used by this thread only; closed by `close()` once the threads have ended.
            connection = shared_sqlite.connect(self._path, STORE_TIMEOUT_SECONDS)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def record(self, job_id: int, run_attempt: int, action: str) -> None:
        """Remember that a runner took this job attempt (`action`: in_progress or completed).

        Raises:
            TakenStoreError: the file could not be written; the caller keeps the event.
        """
        now = self._clock()
        try:
            db = self._db()
            db.execute(
                "INSERT INTO taken (job_id, run_attempt, action, recorded) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (job_id, run_attempt)"
                " DO UPDATE SET action = excluded.action, recorded = excluded.recorded",
                (job_id, run_attempt, action, now),
            )
            with self._lock:
                self._records += 1
                purge = self._records % PURGE_EVERY == 0
            if purge:
                self.purge()
        except sqlite3.Error as exc:
            raise TakenStoreError(f"cannot record job {job_id}: {exc}") from exc

    def purge(self) -> None:
        """Drop expired records and, past the bound, the oldest ones.

        Raises:
            sqlite3.Error: the file could not be written.
        """
        db = self._db()
        db.execute("DELETE FROM taken WHERE recorded < ?", (self._clock() - self._retention,))
        db.execute(
            "DELETE FROM taken WHERE rowid IN"
            " (SELECT rowid FROM taken ORDER BY recorded DESC LIMIT -1 OFFSET ?)",
            (self._max_rows,),
        )

    def taken(self, job_id: int, run_attempt: int) -> str | None:
        """The action an event reported for this job attempt, None when none is known.

        Raises:
            TakenStoreError: the file could not be read (the caller asks GitHub instead).
        """
        try:
            row = (
                self._db()
                .execute(
                    "SELECT action FROM taken WHERE job_id = ? AND run_attempt = ?"
                    " AND recorded >= ?",
                    (job_id, run_attempt, self._clock() - self._retention),
                )
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise TakenStoreError(f"cannot read job {job_id}: {exc}") from exc
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close every thread's connection (call once the threads using it have ended)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
