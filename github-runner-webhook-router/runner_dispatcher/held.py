"""A journal of held messages, for brokers that forget a message once it is delivered.

Kombu's virtual transports without acknowledgement emulation (the embedded filesystem broker,
MongoDB) delete a message from the broker when they hand it to a consumer and keep it
"unacknowledged" only in that process's memory: a clean stop puts it back, SIGKILL loses
it. So, on those brokers, a consumer first writes the message to a file named after its
process; the file is removed once the message is finished or handed back. A dispatcher that
starts republishes the files of processes that no longer exist: at-least-once again, as on
RabbitMQ and Redis. The journal is local, so it covers a dispatcher restarted on the same
machine (the embedded broker's case; on MongoDB, keep the state folder on the unit).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Producer
from kombu.transport.base import Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldMessage:
    """A journal entry: enough to publish the message again as it was."""

    flavour: str
    body: bytes
    headers: dict[str, Any]
    content_type: str | None
    content_encoding: str | None


class HeldJournal:
    """The folder of held messages, one file per message, named `<pid>-<uuid>.json`."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)

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
        path = self._folder / f"{os.getpid()}-{uuid.uuid4().hex}.json"
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

    def recover(self, conn: Connection, timeout: float) -> int:
        """Republish the entries of dead processes; returns how many were put back.

        An entry is claimed by renaming it first, so two dispatchers starting together never
        both republish it. Killed between the publish and the removal, the next start
        publishes it again: a duplicate, which the GitHub check before spawning absorbs.
        """
        count = 0
        producer = Producer(conn.channel())
        for path in self._orphans():
            claimed = path.with_suffix(f".claimed-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another dispatcher claimed it
            held = _read(claimed)
            if held is not None:
                producer.publish(
                    held.body,
                    exchange="",
                    routing_key=held.flavour,
                    headers=held.headers,
                    content_type=held.content_type,
                    content_encoding=held.content_encoding,
                    delivery_mode=2,
                    timeout=timeout,
                )
                count += 1
            claimed.unlink(missing_ok=True)
        if count:
            logger.warning("put back %d message(s) held by dispatchers that were killed", count)
        return count

    def _orphans(self) -> Iterator[Path]:
        for path in sorted(self._folder.glob("*.json")):
            pid_text = path.name.split("-", 1)[0]
            if pid_text.isdigit() and not _alive(int(pid_text)):
                yield path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


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
