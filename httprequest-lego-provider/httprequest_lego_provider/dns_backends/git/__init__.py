"""The git backend: challenge records committed to the DNS team's repository of zone files.

Its parts: :mod:`.backend` (group commit, locking, the backend itself), :mod:`.repository`
(the clone or local repository, the commits built in it and their publication),
:mod:`.transport` (how fetches and pushes reach a network remote), :mod:`.zonefile` (the zone
file format) and :mod:`.settings` (``DJANGO_GIT_*``).
"""

from __future__ import annotations

from dns_backends.git.backend import GitBackend, from_env

__all__ = ["GitBackend", "from_env"]
