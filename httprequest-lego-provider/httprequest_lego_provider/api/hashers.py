"""A fast hasher for passwords the service generates itself.

Django's default hasher spends ~0.5 s of CPU per check on purpose, to slow down guessing of
human-chosen passwords; lego sends basic auth on every call, so that cost lands on every
request. A password generated here carries 256 bits of entropy: no number of guesses per second
makes it findable, so one salted SHA-256 protects it as well as a slow hash would, at a
microsecond per check. Human passwords keep the slow default.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from cooperative import off_the_event_loop
from django.contrib.auth.hashers import (
    BasePasswordHasher,
    PBKDF2PasswordHasher,
    make_password,
    mask_hash,
)
from django.utils.crypto import constant_time_compare

ALGORITHM = "generated_sha256"
GENERATED_PASSWORD_BYTES = 32


def generate_password() -> str:
    """Return a new high-entropy password (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def make_generated_password_hash(password: str) -> str:
    """Hash a password from :func:`generate_password` with the fast hasher."""
    return make_password(password, hasher=ALGORITHM)


def is_generated_password_hash(encoded: str) -> bool:
    """Whether ``encoded`` was made by :class:`GeneratedTokenHasher`."""
    return encoded.startswith(ALGORITHM + "$")


class GeneratedTokenHasher(BasePasswordHasher):
    """Salted SHA-256, only for passwords of at least 256 bits of entropy."""

    algorithm = ALGORITHM

    def encode(self, password: str, salt: str) -> str:
        """Return ``algorithm$salt$hexdigest``."""
        if password is None or not salt or "$" in salt:
            raise ValueError("a password and a salt without $ are required")
        digest = hashlib.sha256(f"{salt}${password}".encode()).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict[str, Any]:
        """Split an encoded hash into its parts."""
        algorithm, salt, digest = encoded.split("$", 2)
        if algorithm != self.algorithm:
            raise ValueError("not a generated-password hash")
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password: str, encoded: str) -> bool:
        """Compare in constant time."""
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        """What the admin shows instead of the hash."""
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"], show=2),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        """Never re-hash: a slower hash would add nothing for a generated password."""
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        """Nothing to even out: the cost does not depend on the stored hash."""


class OffloadedPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 (same algorithm name, so stored hashes stay valid), off the event loop."""

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        """Hash as Django does, on a real thread under gevent (PBKDF2 releases the GIL)."""
        return off_the_event_loop(super().encode, password, salt, iterations)
