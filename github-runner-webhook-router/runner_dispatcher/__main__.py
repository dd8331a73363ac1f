"""Run the dispatcher: `python -m runner_dispatcher` (configuration from the environment)."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from runner_dispatcher.errors import ConfigError
from runner_dispatcher.service import Dispatcher
from runner_dispatcher.settings import Settings
from runner_dispatcher.taken import TakenStoreError

EXIT_OK = 0
EXIT_CONFIG = 1


def main() -> int:
    """Start, run until SIGTERM/SIGINT or `__END__`, stop cleanly; returns the exit code."""
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )
    try:
        dispatcher = Dispatcher(settings)
    except TakenStoreError as exc:  # the state folder is not writable
        print(f"error: DISPATCHER_STATE_DIR: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:  # the health port is taken
        print(f"error: DISPATCHER_HEALTH_PORT: cannot listen: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG

    def on_signal(number: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after the current steps", number)
        dispatcher.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dispatcher.start()
    # Poll so signal handlers run promptly in the main thread.
    while not dispatcher.wait(timeout=0.5):
        pass
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
