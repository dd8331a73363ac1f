"""Whether gevent runs this process, and how blocking work then leaves its event loop free.

Under gunicorn's gevent worker every request of a worker shares one OS thread. Work that waits
or computes in C, where gevent cannot switch to another greenlet (a libgit2 fetch or push, a
commit being built, a half-second PBKDF2 password hash), would stall every other request of the
worker until it ends. On one of gevent's pool threads it runs beside the event loop instead.
Without gevent (threads) nothing changes: the work runs in the calling thread.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def gevent_patched() -> bool:
    """Tell whether gevent monkey-patched this process (gunicorn's gevent worker does).

    gevent is imported only when it is already loaded: it need not be installed.
    """
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def off_the_event_loop(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Return ``function(*args, **kwargs)``, on a thread of gevent's pool under gevent.

    The calling greenlet waits for it cooperatively; its exception is raised here.
    """
    if not gevent_patched():
        return function(*args, **kwargs)
    import gevent  # only where gevent already runs

    result: T = gevent.get_hub().threadpool.apply(function, args, kwargs)
    return result
