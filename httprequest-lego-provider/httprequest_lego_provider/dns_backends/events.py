"""Events a backend reports while it works (lost push races, retries), for whoever listens.

Backends stay independent of the service: the service's metrics subscribe a listener, a
backend calls :func:`emit`. A listener that fails is logged and never fails the backend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final, Literal

logger = logging.getLogger(__name__)

# A push was refused because the branch moved since the commit's base (another writer won).
PUSH_CONFLICT: Final = "push_conflict"
# The change is re-applied on the new tip and pushed again after a conflict.
PUSH_RETRY: Final = "push_retry"
Event = Literal["push_conflict", "push_retry"]
Listener = Callable[[str, Event], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def subscribe(listener: Listener) -> None:
    """Call ``listener(backend_name, event)`` for every event from now on (once per listener)."""
    with _lock:
        if listener not in _listeners:
            _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    """Stop calling ``listener``."""
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def emit(backend: str, event: Event) -> None:
    """Tell every listener that ``backend`` had ``event``."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(backend, event)
        except Exception:
            logger.exception("a listener of backend events failed on %s", event)
