"""GitHub's webhook signature: `sha256=` + hex HMAC-SHA256 of the raw body."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from webhook_router.errors import SignatureMismatchError, SignatureMissingError

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """Compute the X-Hub-Signature-256 header value GitHub sends for `body`."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secrets: Sequence[bytes], body: bytes, header: str | None) -> int:
    """Check a signature header against the body with each secret, in constant time.

    During a rotation GitHub signs with one secret while the router knows two: the header
    matches one of them. The header is compared as bytes: comparing str with
    `hmac.compare_digest` raises TypeError on non-ASCII text, which a forged header can contain.

    Args:
        secrets: the accepted webhook secrets, current first.
        body: the raw request body, exactly as received.
        header: the X-Hub-Signature-256 header, if any.

    Returns:
        The position in `secrets` of the secret that signed the body (for the metric).

    Raises:
        SignatureMissingError: no header.
        SignatureMismatchError: the header is no secret's signature of the body.
    """
    if header is None:
        raise SignatureMissingError()
    try:
        received = header.strip().encode("ascii")
    except UnicodeEncodeError as exc:
        raise SignatureMismatchError() from exc
    for position, secret in enumerate(secrets):
        if hmac.compare_digest(received, sign(secret, body).encode("ascii")):
            return position
    raise SignatureMismatchError()
