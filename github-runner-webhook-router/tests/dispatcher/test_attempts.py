"""Attempt counting (X-Process-Count) and the backoff schedule of SPEC 2.2."""

from __future__ import annotations

import pytest
from runner_dispatcher.attempts import backoff_seconds, previous_attempts
from runner_dispatcher.contract import RejectedMessage


@pytest.mark.parametrize(
    ("headers", "expected"),
    [(None, 0), ({}, 0), ({"X-Process-Count": 3}, 3), ({"X-Process-Count": "2"}, 2)],
)
def test_previous_attempts_come_from_the_header(
    headers: dict[str, object] | None, expected: int
) -> None:
    assert previous_attempts(headers) == expected


@pytest.mark.parametrize("value", [-1, "x", "1.5", 1.5, True, None, [1]])
def test_a_header_that_is_not_a_count_makes_the_message_malformed(value: object) -> None:
    with pytest.raises(RejectedMessage) as caught:
        previous_attempts({"X-Process-Count": value})

    assert caught.value.reason == "malformed"


def test_default_schedule_is_60_s_doubling_capped_at_30_minutes() -> None:
    waits = [backoff_seconds(previous, 60, 1800) for previous in range(8)]

    assert waits == [0, 60, 120, 240, 480, 960, 1800, 1800]


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    assert backoff_seconds(10_000, 60, 1800) == 1800
