"""acme-dns credentials: generated, stored hashed (fast hasher), checked in constant time."""

from __future__ import annotations

import functools
import re
import uuid

from api.acmedns.errors import ForbiddenError
from api.hashers import GeneratedTokenHasher, generate_password, make_generated_password_hash
from api.metrics import count_authentication_failure
from api.models import AcmeDnsAccount

# acme-dns usernames and subdomains are UUIDs; clients send them back as they were given.
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Longer than any key we generate (43 characters); bounds the hashing work of a bad request.
MAX_KEY_LENGTH = 128


def parse_uuid(text: object) -> uuid.UUID | None:
    """Return the UUID in its canonical text form (``8-4-4-4-12`` hex), else None."""
    if not isinstance(text, str) or not _UUID.fullmatch(text.lower()):
        return None
    return uuid.UUID(text)


def new_key() -> tuple[str, str]:
    """Return a new API key (256 bits, 43 characters) and its hash, the only part stored."""
    key = generate_password()
    return key, make_generated_password_hash(key)


@functools.cache
def _decoy_hash() -> str:
    """A hash no key matches, checked when the user is unknown so both failures cost the same."""
    return make_generated_password_hash(generate_password())


def authenticate(api_user: str | None, api_key: str | None) -> AcmeDnsAccount:
    """Return the account the ``X-Api-User``/``X-Api-Key`` headers belong to.

    Raises:
        ForbiddenError: unknown user or wrong key (acme-dns's 401, whichever it is).
    """
    username = parse_uuid(api_user)
    account = None
    if username is not None:
        account = AcmeDnsAccount.objects.select_related("user").filter(username=username).first()
    encoded = account.key_hash if account is not None else _decoy_hash()
    key = api_key if isinstance(api_key, str) and len(api_key) <= MAX_KEY_LENGTH else ""
    valid = bool(key) and GeneratedTokenHasher().verify(key, encoded)
    if account is None or not valid:
        count_authentication_failure("refused")
        raise ForbiddenError()
    return account
