"""The process's DNS backend, created once per process (after gunicorn forks)."""

from __future__ import annotations

import os
import threading

from django.conf import settings
from dns_backends import Deadline, DnsBackend, load_backend

_lock = threading.Lock()
_backend: DnsBackend | None = None
_owner_pid: int | None = None


def get_backend() -> DnsBackend:
    """Return this process's backend, building it on first use.

    A backend holds threads, locks and repository handles that must not cross a fork, so a
    child process builds its own.
    """
    global _backend, _owner_pid
    pid = os.getpid()
    if _backend is None or _owner_pid != pid:
        with _lock:
            if _backend is None or _owner_pid != pid:
                _backend = load_backend(
                    settings.DNS_BACKEND, settings.DNS_BACKEND_ENVIRON, data_dir=settings.DATA_DIR
                )
                _owner_pid = pid
    return _backend


def request_deadline() -> Deadline:
    """Return a new deadline for one request's backend work (``DJANGO_REQUEST_DEADLINE``).

    Take it once per request, as the request starts its backend work, and pass it to every
    backend call the request makes.
    """
    return Deadline.after(settings.REQUEST_DEADLINE)


def reset_backend() -> None:
    """Forget the backend (tests switch backends between cases)."""
    global _backend, _owner_pid
    with _lock:
        _backend = None
        _owner_pid = None
