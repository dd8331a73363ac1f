"""The grammar of names and values the provider accepts: the narrowest real clients send.

Nothing from a request reaches a DNS backend without passing through these functions.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

CHALLENGE_LABEL = "_acme-challenge"
# The longest name DNS holds, in text form without the final dot (255 octets on the wire).
MAX_NAME_LENGTH = 253
# A challenge is written at ``_acme-challenge.<domain>``, which must itself fit: a domain that is
# valid alone can still be one no backend can hold once the label is added.
MAX_CHALLENGE_DOMAIN_LENGTH = MAX_NAME_LENGTH - len(CHALLENGE_LABEL) - 1
# dns-account-01 (SPEC 4.2) writes at ``_<label>._acme-challenge.<domain>``: the label is the
# lowercased base32 of the first 10 bytes of SHA-256 of the ACME account URL, so exactly 16
# characters of the RFC 4648 alphabet (letters and 2-7), never padded.
ACCOUNT_LABEL_LENGTH = 16
_ACCOUNT_LABEL = re.compile(r"[a-z2-7]{16}")
# ``_<label>.`` takes 18 more characters from the domain's share of the 253.
MAX_ACCOUNT_CHALLENGE_DOMAIN_LENGTH = MAX_CHALLENGE_DOMAIN_LENGTH - ACCOUNT_LABEL_LENGTH - 2
_HOSTNAME_MESSAGE = "must be a domain name of letters, digits and hyphens, like example.com"
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
    if not name.isascii():  # before lower(): "\u212a" (Kelvin sign) would become an ASCII "k"
        raise InvalidNameError(_HOSTNAME_MESSAGE)
    lowered = name.lower()
    if lowered.endswith("."):
        lowered = lowered[:-1]
    if len(lowered) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"must be at most {MAX_NAME_LENGTH} characters")
    labels = lowered.split(".")
    if len(labels) < 2 or not all(_LDH_LABEL.fullmatch(label) for label in labels):
        raise InvalidNameError(_HOSTNAME_MESSAGE)
    return lowered


@dataclass(frozen=True)
class ChallengeName:
    """Where a challenge's TXT record lives, and the name the grant check judges.

    ``domain`` is the name the certificate is for; ``account_label`` is set for dns-account-01
    (``_<label>._acme-challenge.<domain>``) and None for dns-01 (``_acme-challenge.<domain>``).
    The label only says which ACME account asks: a grant on ``domain`` covers both forms.
    """

    domain: str
    account_label: str | None = None

    @property
    def fqdn(self) -> str:
        """The record name without the trailing dot."""
        return challenge_name(self.domain, self.account_label)


def normalise_challenge_domain(name: str, account_label: str | None = None) -> str:
    """Return the normalised domain of a challenge, refusing one whose challenge name is too long.

    Raises:
        InvalidNameError: ``name`` is not a hostname, or the challenge name built on it
            (``_acme-challenge.<name>``, or ``_<label>._acme-challenge.<name>`` with an account
            label) would exceed what DNS can hold.
    """
    domain = normalise_domain(name)
    form, longest = f"{CHALLENGE_LABEL}.<name>", MAX_CHALLENGE_DOMAIN_LENGTH
    if account_label is not None:
        form, longest = f"_<account label>.{form}", MAX_ACCOUNT_CHALLENGE_DOMAIN_LENGTH
    if len(domain) > longest:
        raise InvalidNameError(f"is too long: {form} must be at most {MAX_NAME_LENGTH} characters")
    return domain


def parse_challenge_name(fqdn: str) -> ChallengeName:
    """Return what a challenge name is for: ``_acme-challenge.www.example.com.`` -> www...

    Two forms are accepted, case-insensitively like every DNS name here and normalised to lower
    case: dns-01's ``_acme-challenge.<name>`` and dns-account-01's
    ``_<label>._acme-challenge.<name>`` with a 16-character base32 label. Nothing else may come
    before ``_acme-challenge``: any other label would be a name no ACME server asks for.

    Raises:
        InvalidNameError: the name is in neither form, its account label is not 16 base32
            characters, its ``<name>`` is not a hostname, or it is longer than DNS allows.
    """
    if not isinstance(fqdn, str):
        raise InvalidNameError("must be a string")
    if not fqdn.isascii():  # before lower(), as in normalise_domain
        raise InvalidNameError(_HOSTNAME_MESSAGE)
    first, dot, rest = fqdn.lower().partition(".")
    if first == CHALLENGE_LABEL and dot:
        return ChallengeName(normalise_challenge_domain(rest))
    second, dot, domain = rest.partition(".")
    if first.startswith("_") and second == CHALLENGE_LABEL and dot:
        label = first[1:]
        if not _ACCOUNT_LABEL.fullmatch(label):
            raise InvalidNameError(
                f"account label must be {ACCOUNT_LABEL_LENGTH} base32 characters (a-z, 2-7), "
                f"as dns-account-01 writes _<label>.{CHALLENGE_LABEL}.<name>"
            )
        return ChallengeName(normalise_challenge_domain(domain, label), label)
    raise InvalidNameError(
        f"must start with {CHALLENGE_LABEL}. (dns-01) or _<account label>.{CHALLENGE_LABEL}. "
        "(dns-account-01)"
    )


def challenge_name(domain: str, account_label: str | None = None) -> str:
    """Return the challenge record name (no trailing dot) for a normalised domain.

    With ``account_label`` (already validated) it is dns-account-01's
    ``_<label>._acme-challenge.<domain>``; without, dns-01's ``_acme-challenge.<domain>``.
    """
    if account_label is None:
        return f"{CHALLENGE_LABEL}.{domain}"
    return f"_{account_label}.{CHALLENGE_LABEL}.{domain}"


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
