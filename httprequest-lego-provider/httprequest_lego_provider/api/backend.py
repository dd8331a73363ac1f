"""The process's DNS backend, created once per process (after gunicorn forks)."""

from __future__ import annotations

import os
import threading

from django.conf import settings
from dns_backends import DnsBackend, load_backend

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
                _backend = load_backend(settings.DNS_BACKEND, settings.DNS_BACKEND_ENVIRON)
                _owner_pid = pid
    return _backend


def reset_backend() -> None:
    """Forget the backend (tests switch backends between cases)."""
    global _backend, _owner_pid
    with _lock:
        _backend = None
        _owner_pid = None
