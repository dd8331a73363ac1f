"""The headers a message carries between attempts, and the wait before each attempt.

- `X-Process-Count`: attempts made (SPEC 2.2); a failed spawn or an unpicked runner adds one.
- `X-Dispatcher-Unavailable`: consecutive requeues because GitHub could not be asked. They
  are not attempts (nothing was tried), so an outage never uses up a job's attempts; they
  only lengthen the wait, and `X-Dispatcher-Unavailable-Since` bounds them in time.
- `X-Dispatcher-Spawned-At`: a runner was started for the job and the dispatcher stopped
  before seeing it take the job: the next holder watches for the pickup before spawning.
- `X-Dispatcher-Recovered`: put back from the held-message journal after a crash; like a
  broker redelivery, a runner may already have been started.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from runner_dispatcher.contract import RejectedMessage

HEADER = "X-Process-Count"
UNAVAILABLE_HEADER = "X-Dispatcher-Unavailable"
UNAVAILABLE_SINCE_HEADER = "X-Dispatcher-Unavailable-Since"
SPAWNED_AT_HEADER = "X-Dispatcher-Spawned-At"
RECOVERED_HEADER = "X-Dispatcher-Recovered"
# Headers of one delivery's history that a fresh attempt drops.
TRANSIENT_HEADERS = (SPAWNED_AT_HEADER, RECOVERED_HEADER)


@dataclass(frozen=True)
class History:
    """What the headers say about the job's earlier deliveries.

    Attributes:
        previous: attempts made before this delivery (X-Process-Count).
        unavailable: consecutive requeues because GitHub was unavailable.
        unavailable_since: when the first of those happened (Unix time), None without any.
        spawned: a runner was started and its pickup not yet seen.
    """

    previous: int
    unavailable: int = 0
    unavailable_since: float | None = None
    spawned: bool = False


def previous_attempts(headers: Mapping[str, object] | None) -> int:
    """How many attempts were made before this delivery: the header's value, 0 without it.

    Raises:
        RejectedMessage: the header is not a non-negative integer (reason "malformed").
    """
    return _count(headers or {}, HEADER)


def history(headers: Mapping[str, object] | None) -> History:
    """Read every dispatcher header.

    Raises:
        RejectedMessage: a header is not a non-negative number (reason "malformed").
    """
    values = headers or {}
    since = values.get(UNAVAILABLE_SINCE_HEADER)
    return History(
        previous=_count(values, HEADER),
        unavailable=_count(values, UNAVAILABLE_HEADER),
        unavailable_since=None
        if since is None
        else float(_count(values, UNAVAILABLE_SINCE_HEADER)),
        spawned=values.get(SPAWNED_AT_HEADER) is not None,
    )


def _count(headers: Mapping[str, object], name: str) -> int:
    value = headers.get(name, 0)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RejectedMessage("malformed", f"{name} is not a non-negative integer")
    return value


def backoff_seconds(previous: int, base: float, cap: float) -> float:
    """The wait before an attempt: none for the first, then base x 2^(previous-1), capped.

    This is the last consumer's schedule (60 s, 120 s, 240 s ... at most 30 minutes).
    """
    if previous <= 0:
        return 0.0
    # Capping the exponent first keeps a huge attempt count from overflowing the float.
    return min(cap, base * 2.0 ** min(previous - 1, 64))


def now_seconds() -> int:
    """Unix time in whole seconds, as the headers carry it."""
    return int(time.time())
