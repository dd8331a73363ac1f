"""DNS backends: where TXT records for ACME DNS-01 challenges are written.

Every backend implements :class:`~dns_backends.base.DnsBackend` (``present``/``cleanup`` of one
TXT value at one name) and is selected by name from configuration with :func:`load_backend`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from dns_backends.base import (
    BackendConfigError,
    DnsBackend,
    DnsBackendError,
    DnsBackendUnavailableError,
    ZoneNotFoundError,
)

# name -> module path; each module exposes ``from_env(environ) -> DnsBackend``.
BACKENDS: dict[str, str] = {
    "git": "dns_backends.git",
    "rfc2136": "dns_backends.rfc2136",
    "memory": "dns_backends.memory",
}

__all__ = [
    "BACKENDS",
    "BackendConfigError",
    "DnsBackend",
    "DnsBackendError",
    "DnsBackendUnavailableError",
    "ZoneNotFoundError",
    "load_backend",
]


def load_backend(name: str, environ: Mapping[str, str]) -> DnsBackend:
    """Build the backend called ``name`` from the (process) environment.

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
    backend: DnsBackend = module.from_env(environ)
    return backend
