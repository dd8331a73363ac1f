"""Attempt counting in the `X-Process-Count` header and the wait before each attempt."""

from __future__ import annotations

from collections.abc import Mapping

from runner_dispatcher.contract import RejectedMessage

HEADER = "X-Process-Count"


def previous_attempts(headers: Mapping[str, object] | None) -> int:
    """How many attempts were made before this delivery: the header's value, 0 without it.

    Raises:
        RejectedMessage: the header is not a non-negative integer (reason "malformed").
    """
    value = (headers or {}).get(HEADER, 0)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RejectedMessage("malformed", f"{HEADER} is not a non-negative integer")
    return value


def backoff_seconds(previous: int, base: float, cap: float) -> float:
    """The wait before an attempt: none for the first, then base x 2^(previous-1), capped.

    This is the last consumer's schedule (60 s, 120 s, 240 s ... at most 30 minutes).
    """
    if previous <= 0:
        return 0.0
    # Capping the exponent first keeps a huge attempt count from overflowing the float.
    return min(cap, base * 2.0 ** min(previous - 1, 64))
