"""The acme-dns settings: Django's ``ACMEDNS`` (validated at start) in one frozen dataclass."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from httprequest_lego_provider.environment import AcmeDnsSettings


@dataclass(frozen=True)
class AcmeDnsConfig:
    """What the acme-dns endpoints need beyond the DNS backend.

    Attributes:
        zone: the delegation zone (``DJANGO_ACMEDNS_ZONE``): delegated accounts get
            ``<uuid>.<zone>``; ``None`` allows direct accounts only.
        server_url: the base URL clients reach the service at (``DJANGO_ACMEDNS_SERVER_URL``),
            written into the account files as ``server_url``; optional.
    The client address comes from :mod:`api.client_address` (``DJANGO_PROXY_HOPS``), the one
    rule of the whole service.
    """

    zone: str | None = None
    server_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AcmeDnsConfig:
        """Validate the variables (the zone and URL as the settings do); errors name them."""
        acmedns = AcmeDnsSettings.from_env(environ)
        return cls(zone=acmedns.zone, server_url=acmedns.server_url)

    @classmethod
    def from_settings(cls) -> AcmeDnsConfig:
        """The zone and URL from the settings, validated when the service started."""
        acmedns: AcmeDnsSettings = settings.ACMEDNS
        return cls(zone=acmedns.zone, server_url=acmedns.server_url)


_lock = threading.Lock()
_config: AcmeDnsConfig | None = None


def acmedns_config() -> AcmeDnsConfig:
    """Return the process's settings (Django's, read at start), gathered on first use."""
    global _config
    if _config is None:
        with _lock:
            if _config is None:
                _config = AcmeDnsConfig.from_settings()
    return _config


def set_acmedns_config(config: AcmeDnsConfig | None) -> None:
    """Replace the settings (tests), or forget them so the next use reads Django's again."""
    global _config
    with _lock:
        _config = config
