"""``allow_domains <username> [--domains a,b] [--subdomains c,d]``."""

from __future__ import annotations

from api.grants import allow
from api.management.commands._grant_command import GrantCommand


class Command(GrantCommand):
    """Grant a user domains (exact names) and subdomains (names strictly below)."""

    help = __doc__
    change = staticmethod(allow)
    verb = "allowed"
