"""A worker remembers, briefly, which (username, password) pairs it verified: µs, not 350 ms.

lego sends basic auth on every call, and a person-chosen password is stored with the slow
hasher (PBKDF2, ~0.35 s of CPU here) on purpose. After one successful slow check, a worker
keeps an entry for the pair for ``TTL_SECONDS`` so the next calls cost an HMAC:

- The key is an HMAC-SHA256 of the username and password under a random key made when the
  process starts and never stored or shared; neither the password nor a plain hash of it is
  kept. The value is the *stored* password hash the pair was verified against: a hit counts
  only while the account still has that hash, so a password change (on any worker or unit)
  drops it at the next call. Deactivation and expiry are checked on every call by the backend
  anyway, hit or miss.
- Only a right password can ever hit (it must have passed the slow check first): a wrong guess
  misses, takes the slow check and counts as a failure for the throttle, as before. What is
  stored in the database does not change.
- At most ``MAX_ENTRIES`` entries, least recently used out first; thread-safe (gunicorn's
  threaded workers share one map per process).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from django.utils.crypto import constant_time_compare

MAX_ENTRIES = 1024
TTL_SECONDS = 300.0


class VerifiedCredentials:
    """A bounded, short-lived map of recently verified credentials (see the module docstring)."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        ttl_seconds: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # digest -> (the stored hash it was verified against, when the entry ends)
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()

    def _digest(self, username: str, password: str) -> bytes:
        user = username.encode("utf-8", "surrogatepass")
        message = len(user).to_bytes(4, "big") + user + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, username: str, password: str, stored_hash: str) -> bool:
        """Whether this pair was verified against ``stored_hash`` within the last TTL."""
        digest = self._digest(username, password)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return False
            verified_hash, ends = entry
            if ends <= now or not constant_time_compare(verified_hash, stored_hash):
                del self._entries[digest]  # expired, or the password changed since
                return False
            self._entries.move_to_end(digest)
            return True

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        """Record that the pair was just verified against ``stored_hash`` (the slow way)."""
        if self._max_entries <= 0:
            return
        digest = self._digest(username, password)
        ends = self._clock() + self._ttl
        with self._lock:
            self._entries[digest] = (stored_hash, ends)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# One map per process: the key is this process's own.
verified_credentials = VerifiedCredentials()
