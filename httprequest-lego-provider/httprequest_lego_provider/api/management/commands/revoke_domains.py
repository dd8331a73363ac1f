"""``revoke_domains <username> [--domains a,b] [--subdomains c,d]``."""

from __future__ import annotations

from api.grants import revoke
from api.management.commands._grant_command import GrantCommand


class Command(GrantCommand):
    """Withdraw a user's grants."""

    help = __doc__
    change = staticmethod(revoke)
    verb = "revoked"
