"""Remember published job attempts across worker processes so each is published once.

Keys are a job attempt's identity from the signed body (see `Job.identity`), not the
delivery id, which the signature does not cover. The protocol is reserve, then confirm or
release: `claim` reserves a key for a short time, the caller publishes, then `confirm` keeps the
key for the whole window, or `release` forgets it after a failed publish so that GitHub's
redelivery is published. Keys are never recorded before the job is safely in the broker.
"""

from __future__ import annotations

import enum
import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from webhook_router import shared_sqlite
from webhook_router.errors import RouterError

# A reservation outlives the longest publish by far; if its worker dies mid-publish the
# delivery can be redelivered once this passes.
PENDING_SECONDS = 30
# The store is a side concern: it must never eat the broker's share of GitHub's 10 s.
STORE_TIMEOUT_SECONDS = 0.5
REDIS_DEDUP_PREFIX = "webhook-router:job:"
_PENDING = "pending"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS deliveries ("
    " id TEXT PRIMARY KEY, state TEXT NOT NULL, expires REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS deliveries_expires ON deliveries(expires)",
)
_DONE = "done"


class Claim(enum.Enum):
    """What `claim` found."""

    NEW = "new"
    DONE = "done"
    IN_PROGRESS = "in_progress"


class DedupStoreError(RouterError):
    """The dedup store did not answer; the caller publishes anyway (a duplicate beats a loss)."""

    status = 503
    reason = "dedup_unavailable"
    default_message = "Deduplication store unavailable"


class DedupStore(Protocol):
    """A shared set of keys with per-key expiry."""

    def claim(self, key: str) -> Claim:
        """Reserve the id unless it is already reserved or published."""
        ...

    def confirm(self, key: str) -> None:
        """Record the id as published for the whole window."""
        ...

    def release(self, key: str) -> None:
        """Forget a reservation after a failed publish."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class NullDedupStore:
    """Deduplication switched off: every delivery is new."""

    def claim(self, key: str) -> Claim:
        """Every delivery is new."""
        return Claim.NEW

    def confirm(self, key: str) -> None:
        """Nothing to record."""

    def release(self, key: str) -> None:
        """Nothing to forget."""

    def close(self) -> None:
        """Nothing to release."""


class RedisDedupStore:
    """Keys as expiring Redis keys, shared by every worker and unit using that Redis."""

    def __init__(self, url: str, window_seconds: int, prefix: str = REDIS_DEDUP_PREFIX):
        self._window = window_seconds
        self._prefix = prefix
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=STORE_TIMEOUT_SECONDS,
            socket_connect_timeout=STORE_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )

    def claim(self, key: str) -> Claim:
        """Reserve the id with SET NX (one round trip for a new id), or report its state."""
        name = self._prefix + key
        try:
            for _ in range(2):  # a second try only if the key expired between SET and GET
                if self._client.set(name, _PENDING, nx=True, ex=PENDING_SECONDS):
                    return Claim.NEW
                state = self._client.get(name)
                if state is not None:
                    return Claim.DONE if state == _DONE.encode() else Claim.IN_PROGRESS
        except redis.RedisError as exc:
            raise DedupStoreError() from exc
        return Claim.IN_PROGRESS

    def confirm(self, key: str) -> None:
        """Keep the id for the window."""
        try:
            self._client.set(self._prefix + key, _DONE, ex=self._window)
        except redis.RedisError as exc:
            raise DedupStoreError() from exc

    def release(self, key: str) -> None:
        """Delete the reservation."""
        try:
            self._client.delete(self._prefix + key)
        except redis.RedisError as exc:
            raise DedupStoreError() from exc

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


class SqliteDedupStore:
    """Keys in a SQLite file: shared by every worker process on this machine.

    SQLite's file locking makes the claim atomic across processes; WAL mode lets readers and
    the single writer proceed together. Each thread gets its own connection.
    """

    def __init__(self, path: Path, window_seconds: int) -> None:
        self._path = path
        self._window = window_seconds
        self._local = threading.local()
        self._claims = 0
        try:
            shared_sqlite.prepare(path, _SCHEMA, STORE_TIMEOUT_SECONDS)
        except (OSError, sqlite3.Error) as exc:
            raise DedupStoreError() from exc

    def _db(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = shared_sqlite.connect(self._path, STORE_TIMEOUT_SECONDS)
            self._local.connection = connection
        return connection

    def claim(self, key: str) -> Claim:
        """Insert a reservation unless a live row exists, in one immediate transaction."""
        now = time.time()
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM deliveries WHERE id = ? AND expires < ?", (key, now))
                inserted = db.execute(
                    "INSERT INTO deliveries (id, state, expires) VALUES (?, ?, ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (key, _PENDING, now + PENDING_SECONDS),
                ).rowcount
                row = db.execute("SELECT state FROM deliveries WHERE id = ?", (key,)).fetchone()
                self._claims += 1
                if self._claims % 256 == 0:  # keep the file small without a cron job
                    db.execute("DELETE FROM deliveries WHERE expires < ?", (now,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise DedupStoreError() from exc
        if inserted == 1:
            return Claim.NEW
        return Claim.DONE if row is not None and row[0] == _DONE else Claim.IN_PROGRESS

    def confirm(self, key: str) -> None:
        """Mark the id published until the window ends."""
        self._write(
            "UPDATE deliveries SET state = ?, expires = ? WHERE id = ?",
            (_DONE, time.time() + self._window, key),
        )

    def release(self, key: str) -> None:
        """Delete the reservation."""
        self._write("DELETE FROM deliveries WHERE id = ? AND state = ?", (key, _PENDING))

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _write(self, sql: str, parameters: tuple[object, ...]) -> None:
        try:
            self._db().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise DedupStoreError() from exc
