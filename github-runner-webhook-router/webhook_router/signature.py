"""GitHub's webhook signature: `sha256=` + hex HMAC-SHA256 of the raw body."""

from __future__ import annotations

import hashlib
import hmac

from webhook_router.errors import SignatureMismatchError, SignatureMissingError

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """Compute the X-Hub-Signature-256 header value GitHub sends for `body`."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> None:
    """Check a signature header against the body, in constant time.

    The header is compared as bytes: comparing str with `hmac.compare_digest` raises TypeError
    on non-ASCII text, which a forged header can contain.

    Args:
        secret: the webhook secret.
        body: the raw request body, exactly as received.
        header: the X-Hub-Signature-256 header, if any.

    Raises:
        SignatureMissingError: no header.
        SignatureMismatchError: the header is not the body's signature.
    """
    if header is None:
        raise SignatureMissingError()
    try:
        received = header.strip().encode("ascii")
    except UnicodeEncodeError as exc:
        raise SignatureMismatchError() from exc
    if not hmac.compare_digest(received, sign(secret, body).encode("ascii")):
        raise SignatureMismatchError()
