"""One deadline per request, which every step of a backend (locks, transfers, queries) draws from.

A client (lego) gives up after 30 s; a step that outlives that is wasted work and a worker held.
Each step asks :meth:`Deadline.remaining` for its time and calls :meth:`Deadline.check` before
it starts; when the time is gone the request fails with :class:`DeadlineExceededError` (a 503
saying to retry). Changes are atomic where they land (one commit moved onto the branch, one
DNS UPDATE), so a request that runs out has published its change fully or not at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dns_backends.base import DnsBackendUnavailableError

# Well inside lego's 30 s HTTP timeout, leaving it time to read the answer.
DEFAULT_DEADLINE_SECONDS = 20.0


class DeadlineExceededError(DnsBackendUnavailableError):
    """The request's deadline ran out before the backend finished; retrying is safe."""

    def __init__(self, seconds: float, step: str) -> None:
        super().__init__(
            f"the request's deadline of {seconds:g} s ran out while {step}: try again "
            "(presenting or cleaning up again is safe)"
        )


@dataclass(frozen=True)
class Deadline:
    """A point in time (monotonic clock) by which a request's backend work must be done."""

    seconds: float
    expires_at: float = field(default=0.0, compare=False)

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """Return the deadline ``seconds`` from now."""
        return cls(seconds=seconds, expires_at=time.monotonic() + seconds)

    def remaining(self) -> float:
        """Return the seconds left (never negative)."""
        return max(0.0, self.expires_at - time.monotonic())

    def check(self, step: str) -> float:
        """Return the seconds left for ``step``, or fail if there are none.

        Raises:
            DeadlineExceededError: the deadline has passed.
        """
        left = self.remaining()
        if left <= 0:
            raise self.exceeded(step)
        return left

    def exceeded(self, step: str) -> DeadlineExceededError:
        """Return the error that says the deadline ran out during ``step``."""
        return DeadlineExceededError(self.seconds, step)


def default_deadline() -> Deadline:
    """Return the deadline for a call that came without one (tests, diagnostics)."""
    return Deadline.after(DEFAULT_DEADLINE_SECONDS)
