"""The rfc2136 backend: TXT values published by TSIG-signed dynamic updates to the primary.

Its parts: :mod:`.backend` (the updates and zone discovery) and :mod:`.settings`
(``DJANGO_RFC2136_*``).
"""

from __future__ import annotations

from dns_backends.rfc2136.backend import Rfc2136Backend, from_env

__all__ = ["Rfc2136Backend", "from_env"]
