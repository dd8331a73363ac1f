"""The grammar of names and values the provider accepts: the narrowest real clients send.

Nothing from a request reaches a DNS backend without passing through these functions.
"""

from __future__ import annotations

import base64
import hashlib
import re

CHALLENGE_LABEL = "_acme-challenge"
MAX_NAME_LENGTH = 253
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# A challenge value is the unpadded base64url SHA-256 digest of a key authorization (RFC 8555).
_CHALLENGE_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# RFC 8555: a token has at least 128 bits of entropy in base64url; a thumbprint is a SHA-256.
_KEY_AUTHORIZATION = re.compile(r"^([A-Za-z0-9_-]{16,256})\.([A-Za-z0-9_-]{43})$")


class InvalidNameError(ValueError):
    """A name or value does not match the accepted grammar; the message says why."""


def normalise_domain(name: str) -> str:
    """Return ``name`` lower-cased without a trailing dot, or raise if it is not a hostname.

    Only letter-digit-hyphen labels are accepted: challenge names are built from names a
    certificate can carry, and anything else (quotes, spaces, ``;``) could corrupt a zone file.
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError("must be a non-empty domain name")
    lowered = name.lower()
    if lowered.endswith("."):
        lowered = lowered[:-1]
    if len(lowered) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"must be at most {MAX_NAME_LENGTH} characters")
    labels = lowered.split(".")
    if len(labels) < 2 or not all(_LDH_LABEL.fullmatch(label) for label in labels):
        raise InvalidNameError(
            "must be a domain name of letters, digits and hyphens, like example.com"
        )
    return lowered


def challenge_domain(fqdn: str) -> str:
    """Return the domain a challenge name is for: ``_acme-challenge.www.example.com.`` -> www...

    Raises:
        InvalidNameError: the name does not start with ``_acme-challenge.`` or is not a hostname.
    """
    if not isinstance(fqdn, str):
        raise InvalidNameError("must be a string")
    prefix = CHALLENGE_LABEL + "."
    if not fqdn.lower().startswith(prefix):
        raise InvalidNameError(f"must start with {prefix}")
    return normalise_domain(fqdn[len(prefix) :])


def challenge_name(domain: str) -> str:
    """Return the challenge record name (no trailing dot) for a normalised domain."""
    return f"{CHALLENGE_LABEL}.{domain}"


def validate_value(value: object) -> str:
    """Return ``value`` if it is a challenge value (43 characters of unpadded base64url)."""
    if not isinstance(value, str) or not _CHALLENGE_VALUE.fullmatch(value):
        raise InvalidNameError(
            "must be 43 characters of unpadded base64url (an ACME DNS-01 digest)"
        )
    return value


def value_from_key_authorization(key_authorization: object, token: object) -> str:
    """Derive the TXT value for RAW mode: unpadded base64url of SHA-256(keyAuth).

    Raises:
        InvalidNameError: the key authorization is not ``<token>.<thumbprint>`` for this token.
    """
    if not isinstance(key_authorization, str):
        raise InvalidNameError("keyAuth must be a string")
    match = _KEY_AUTHORIZATION.fullmatch(key_authorization)
    if match is None:
        raise InvalidNameError("keyAuth must be <token>.<thumbprint> in base64url")
    if token is not None and token != match.group(1):
        raise InvalidNameError("token does not match keyAuth")
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
