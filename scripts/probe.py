"""Probe a service the way the tests use it: `probe.py postgresql|redis|amqp URL`.

Exits 0 when the service answered, 1 with one line saying why not. Used by scripts/services,
which runs it with the project's virtualenv (psycopg, redis and amqp come from the pins).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

TIMEOUT = 3.0


def postgresql(url: str) -> None:
    """Log in over TCP with the URL's credentials and run a query."""
    import psycopg

    with psycopg.connect(url, connect_timeout=int(TIMEOUT)) as conn:
        conn.execute("SELECT 1")


def redis(url: str) -> None:
    """Send PING and expect PONG."""
    import redis as redis_client

    client = redis_client.Redis.from_url(url, socket_timeout=TIMEOUT)
    try:
        if not client.ping():
            raise RuntimeError("no PONG")
    finally:
        client.close()


def amqp(url: str) -> None:
    """Open an AMQP connection (protocol handshake and login) and a channel."""
    from kombu import Connection

    with Connection(url, connect_timeout=TIMEOUT) as conn:
        conn.ensure_connection(max_retries=0)
        conn.default_channel  # noqa: B018 (opening the channel is the probe)


PROBES: dict[str, Callable[[str], None]] = {
    "postgresql": postgresql,
    "redis": redis,
    "amqp": amqp,
}


def main(argv: list[str]) -> int:
    """Run one probe; print the reason on failure (without the URL: it may hold a password)."""
    if len(argv) != 2 or argv[0] not in PROBES:
        print(f"usage: probe.py {'|'.join(PROBES)} URL", file=sys.stderr)
        return 2
    kind, url = argv
    try:
        PROBES[kind](url)
    except Exception as exc:  # any failure means "not answering": say which
        reason = str(exc).strip().splitlines()
        print(f"{kind}: {type(exc).__name__}: {reason[-1] if reason else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
