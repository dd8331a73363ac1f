"""A journal of held messages, for brokers that forget a message once it is delivered.

Kombu's virtual transports without acknowledgement emulation (the embedded filesystem broker,
MongoDB) delete a message from the broker when they hand it to a consumer and keep it
"unacknowledged" only in that process's memory: a clean stop puts it back, SIGKILL loses
it. So, on those brokers, a consumer first writes the message to a file named after the
journal's owner (one random id per dispatcher incarnation); the file is removed once the
message is finished or handed back.

Whether an owner is alive is told by a lock, not a PID (PIDs are reused, and in a container
every restart is PID 1 again): each owner holds an exclusive `flock` on `owners/<id>.lock`
for its whole life, and the kernel drops it when the process dies, however it dies. An entry
whose owner's lock can be taken (or is gone) is an orphan. Dispatchers look for orphans when
a consumer connects and then periodically, and republish them, marked recovered (a runner
may already have been started for them). The journal is local, so it covers dispatchers on
the same machine (the embedded broker's case; on MongoDB, keep the state folder on the unit).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Producer
from kombu.transport.base import Message

from runner_dispatcher.attempts import RECOVERED_HEADER

logger = logging.getLogger(__name__)
# How often a running dispatcher looks for orphans besides at each (re)connection.
RECOVER_INTERVAL_SECONDS = 30.0
_CLAIMED = ".claimed-"


@dataclass(frozen=True)
class HeldMessage:
    """A journal entry: enough to publish the message again as it was."""

    flavour: str
    body: bytes
    headers: dict[str, Any]
    content_type: str | None
    content_encoding: str | None


class HeldJournal:
    """The folder of held messages, one file per message, named `<owner>-<uuid>.json`.

    Creating a journal makes this process an owner (it takes its lock); `close()` ends that,
    leaving any entry still held to the next recovery.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._owners = folder / "owners"
        self._owners.mkdir(parents=True, exist_ok=True)
        self.owner = uuid.uuid4().hex
        self._lock_path = self._owners / f"{self.owner}.lock"
        self._lock_fd: int | None = os.open(
            self._lock_path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600
        )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._scan_lock = threading.Lock()
        self._next_scan = 0.0

    def close(self) -> None:
        """Stop owning: release the lock (entries left become orphans)."""
        if self._lock_fd is not None:
            self._lock_path.unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def hold(self, flavour: str, message: Message) -> Path:
        """Write the message durably before working on it; returns the entry to release."""
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        entry = {
            "flavour": flavour,
            "body": base64.b64encode(body).decode(),
            "headers": dict(message.headers or {}),
            "content_type": message.content_type,
            "content_encoding": message.content_encoding,
        }
        path = self._folder / f"{self.owner}-{uuid.uuid4().hex}.json"
        partial = path.with_suffix(".partial")
        with partial.open("w") as file:
            json.dump(entry, file)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(path)
        return path

    def release(self, path: Path) -> None:
        """Forget an entry: its message was finished or handed back to the broker."""
        path.unlink(missing_ok=True)

    def due(self) -> bool:
        """Whether a periodic look for orphans is due (true for one caller per interval)."""
        with self._scan_lock:
            now = time.monotonic()
            if now < self._next_scan:
                return False
            self._next_scan = now + RECOVER_INTERVAL_SECONDS
            return True

    def recover(self, conn: Connection, timeout: float) -> int:
        """Republish the entries of dead owners; returns how many were put back.

        An entry is claimed by renaming it to `.claimed-<our id>` first, so two dispatchers
        never both republish it. The publish failing puts the entry back as it was; the
        claimer dying leaves a claim of a dead owner, itself an orphan. Killed between the
        publish and the removal, the next recovery publishes it again: a duplicate, which
        the GitHub check before spawning absorbs.
        """
        count = 0
        producer = Producer(conn.channel())
        for path in self._orphans():
            stem = path.name.split(_CLAIMED, 1)[0].removesuffix(".json")
            claimed = self._folder / f"{stem}{_CLAIMED}{self.owner}"
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another dispatcher claimed it
            held = _read(claimed)
            if held is None:
                continue
            try:
                producer.publish(
                    held.body,
                    exchange="",
                    routing_key=held.flavour,
                    headers={**held.headers, RECOVERED_HEADER: 1},
                    content_type=held.content_type,
                    content_encoding=held.content_encoding,
                    delivery_mode=2,
                    timeout=timeout,
                )
            except BaseException:
                claimed.rename(self._folder / f"{stem}.json")
                raise
            count += 1
            claimed.unlink(missing_ok=True)
        self._forget_dead_owners()
        if count:
            logger.warning("put back %d message(s) held by dispatchers that were killed", count)
        return count

    def _orphans(self) -> Iterator[Path]:
        """Entries (`*.json`) and claims (`*.claimed-<id>`) whose owner is not alive."""
        for path in sorted(self._folder.iterdir()):
            name = path.name
            if name.endswith(".json"):
                owner = name.split("-", 1)[0]
            elif _CLAIMED in name:
                owner = name.rsplit(_CLAIMED, 1)[1]
            else:
                continue
            if not self._alive(owner):
                yield path

    def _alive(self, owner: str) -> bool:
        """Whether the owner's lock is held (by the owner: only it ever holds it for long)."""
        if owner == self.owner:
            return self._lock_fd is not None
        try:
            fd = os.open(self._owners / f"{owner}.lock", os.O_RDWR | os.O_CLOEXEC)
        except (FileNotFoundError, ValueError):
            return False  # never an owner of this scheme (say a PID name), or gone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the lock if we took it
        return False

    def _forget_dead_owners(self) -> None:
        """Remove the lock files of dead owners that have no entry left."""
        names = {path.name for path in self._folder.iterdir()}
        for lock in self._owners.glob("*.lock"):
            owner = lock.name.removesuffix(".lock")
            in_use = any(name.startswith(f"{owner}-") or name.endswith(owner) for name in names)
            if not in_use and not self._alive(owner):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()


def _read(path: Path) -> HeldMessage | None:
    try:
        entry = json.loads(path.read_text())
        return HeldMessage(
            flavour=str(entry["flavour"]),
            body=base64.b64decode(entry["body"]),
            headers=dict(entry["headers"]),
            content_type=entry["content_type"],
            content_encoding=entry["content_encoding"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        logger.exception("unreadable held-message entry %s: left in place", path.name)
        path.rename(path.with_suffix(".unreadable"))
        return None
