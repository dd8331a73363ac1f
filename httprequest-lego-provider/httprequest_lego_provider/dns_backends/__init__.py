"""DNS backends: where TXT records for ACME DNS-01 challenges are written.

Every backend implements :class:`~dns_backends.base.DnsBackend` (``present``/``cleanup`` of one
TXT value at one name) and is selected by name from configuration with :func:`load_backend`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from dns_backends.base import (
    BackendConfigError,
    DnsBackend,
    DnsBackendError,
    DnsBackendUnavailableError,
    InvalidRecordError,
    ZoneNotFoundError,
)
from dns_backends.deadline import Deadline, DeadlineExceededError

# name -> module (or package) path; each exposes ``from_env(environ, *, data_dir) -> DnsBackend``.
BACKENDS: dict[str, str] = {
    "git": "dns_backends.git",
    "rfc2136": "dns_backends.rfc2136",
    "memory": "dns_backends.memory",
}

__all__ = [
    "BACKENDS",
    "BackendConfigError",
    "Deadline",
    "DeadlineExceededError",
    "DnsBackend",
    "DnsBackendError",
    "DnsBackendUnavailableError",
    "InvalidRecordError",
    "ZoneNotFoundError",
    "load_backend",
]


def load_backend(name: str, environ: Mapping[str, str], *, data_dir: Path) -> DnsBackend:
    """Build the backend called ``name`` from the (process) environment.

    ``data_dir`` is the service's state directory (``DJANGO_DATA_DIR``, read once by the
    service's environment); a backend that keeps files keeps them below it by default.

    Raises:
        BackendConfigError: the name is unknown or the backend's settings are invalid.
    """
    try:
        module_path = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise BackendConfigError(
            f"DJANGO_DNS_BACKEND={name!r} is not a known backend (known: {known})"
        ) from None
    module = importlib.import_module(module_path)
    backend: DnsBackend = module.from_env(environ, data_dir=data_dir)
    return backend
