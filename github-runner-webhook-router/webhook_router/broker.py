"""Kombu connections for every supported broker, with bounded timeouts.

Without a broker URL the router uses kombu's filesystem transport in the state directory: it
needs no server, each message is its own file (so gunicorn workers in separate processes never
contend), messages survive restarts, and a consumer reads them with the same `SimpleQueue`
code by opening `connection(...)` with the same settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue


def flavour_queue(flavour: str) -> Queue:
    """The queue a `SimpleQueue(flavour)` consumer declares: same exchange, key and flags.

    Declaring identically matters on RabbitMQ, where a declaration with other flags fails.
    """
    return Queue(flavour, Exchange(flavour, type="direct"), routing_key=flavour)


def connection(url: str | None, state_dir: Path, timeout: float) -> Connection:
    """Open (lazily) a kombu connection whose every network wait is bounded by `timeout`.

    Args:
        url: the broker URL; None for the embedded filesystem broker.
        state_dir: folder of the embedded broker's messages.
        timeout: seconds any single connect, read or write may block.

    Returns:
        A kombu connection, not yet connected.
    """
    if url is None:
        return Connection("filesystem://", transport_options=filesystem_options(state_dir))
    scheme = url.split("://", 1)[0].lower()
    options: dict[str, Any] = {}
    if scheme in {"redis", "rediss"}:
        options = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry_on_timeout": False,
        }
    elif scheme in {"amqp", "amqps", "pyamqp"}:
        # Publisher confirms: basic.publish returns only once RabbitMQ has taken the message.
        options = {"confirm_publish": True, "read_timeout": timeout, "write_timeout": timeout}
    elif scheme.startswith("mongodb"):
        url = mongodb_url_with_timeouts(url, timeout)
    return Connection(url, connect_timeout=timeout, transport_options=options)


def filesystem_options(state_dir: Path) -> dict[str, Any]:
    """Transport options of the embedded broker: one folder for messages, one for control."""
    queues = state_dir / "queues"
    control = state_dir / "queues-control"
    for folder in (queues, control):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queues),
        "data_folder_out": str(queues),
        "control_folder": str(control),
    }


def mongodb_url_with_timeouts(url: str, timeout: float) -> str:
    """Add pymongo timeouts to a MongoDB URI unless the URI sets them itself.

    Kombu's MongoDB transport takes client options only from the URI, and pymongo waits 30 s
    for a server by default: far beyond GitHub's 10 s. The URI may list several hosts
    (a replica set), so it is edited as text rather than parsed as a single-host URL.
    """
    milliseconds = str(int(timeout * 1000))
    base, _, query = url.partition("?")
    present = {pair.split("=", 1)[0].lower() for pair in query.split("&") if pair}
    extra = [
        f"{name}={milliseconds}"
        for name in ("serverSelectionTimeoutMS", "socketTimeoutMS", "connectTimeoutMS")
        if name.lower() not in present
    ]
    if "/" not in base.split("://", 1)[1]:
        base += "/"  # pymongo needs the slash before options
    return base + "?" + "&".join([pair for pair in query.split("&") if pair] + extra)
