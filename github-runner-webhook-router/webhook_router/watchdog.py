"""Abort operations still running at their deadline, without waking a thread per operation."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# How often the watchdog looks for operations past their deadline: the precision of the bound.
WATCHDOG_TICK_SECONDS = 0.02
# The watchdog thread ends after this many ticks with nothing armed (and restarts on demand).
WATCHDOG_IDLE_TICKS = 50

Abort = Callable[[], None]


class Watchdog:
    """Calls an operation's abort once its deadline passes; one polling thread per process.

    Arming and disarming are a dict operation under a lock: the hot path never wakes another
    thread. The thread starts on first use (after gunicorn forks) and ends after a second with
    nothing to watch.
    """

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, Abort]] = {}
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, abort: Abort) -> int:
        """Call `abort` once `deadline` passes, unless disarmed first; returns a token."""
        token = next(self._tokens)
        with self._lock:
            self._armed[token] = (deadline, abort)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="publish-watchdog", daemon=True
                )
                self._thread.start()
        return token

    def disarm(self, token: int) -> bool:
        """Cancel the abort; False when it has fired already."""
        with self._lock:
            return self._armed.pop(token, None) is not None

    def _watch(self) -> None:
        idle = 0
        while True:
            time.sleep(WATCHDOG_TICK_SECONDS)
            now = time.monotonic()
            with self._lock:
                due = [token for token, (deadline, _) in self._armed.items() if deadline <= now]
                aborts = [self._armed.pop(token)[1] for token in due]
                idle = 0 if self._armed or aborts else idle + 1
                if idle >= WATCHDOG_IDLE_TICKS:  # nothing to watch for a while: stop
                    self._thread = None
                    return
            for abort in aborts:
                try:
                    abort()
                except Exception:
                    logger.debug("ignoring error while aborting an operation", exc_info=True)
