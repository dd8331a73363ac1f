"""Parse an httpreq request body, in default or RAW mode, into one validated challenge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from api.names import (
    ChallengeName,
    InvalidNameError,
    challenge_name,
    normalise_challenge_domain,
    parse_challenge_name,
    validate_value,
    value_from_key_authorization,
)

# Longest accepted field: a 253-character name plus the challenge label and a dot.
MAX_FIELD_LENGTH = 300


@dataclass(frozen=True)
class Challenge:
    """One TXT value at one challenge name, both validated.

    The grant check judges ``domain``; the record is written at :attr:`fqdn`, which carries the
    dns-account-01 label when there is one.
    """

    domain: str  # the name the certificate is for: www.example.com
    value: str
    account_label: str | None = None  # dns-account-01's 16 base32 characters; None for dns-01

    @property
    def fqdn(self) -> str:
        """The record name without the trailing dot: _acme-challenge.www.example.com."""
        return challenge_name(self.domain, self.account_label)

    def as_response(self) -> dict[str, str]:
        """The record as the default-mode body names it (absolute name, trailing dot)."""
        return {"fqdn": self.fqdn + ".", "value": self.value}


def _strict_char(**kwargs: Any) -> serializers.CharField:
    """A string field that keeps whitespace, so a stray newline is refused, not trimmed."""
    return serializers.CharField(trim_whitespace=False, max_length=MAX_FIELD_LENGTH, **kwargs)


class DefaultModeSerializer(serializers.Serializer[Challenge]):
    """``{"fqdn": "_acme-challenge.<name>.", "value": "<43 chars>"}``.

    The fqdn may also be dns-account-01's ``_<label>._acme-challenge.<name>.``: a client that
    solves that challenge sends the name it computed, and the value is the same digest.
    """

    fqdn = _strict_char()
    value = _strict_char()

    def validate_fqdn(self, fqdn: str) -> ChallengeName:
        """Return the domain the challenge is for, with its account label if it has one."""
        try:
            return parse_challenge_name(fqdn)
        except InvalidNameError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_value(self, value: str) -> str:
        """Accept only what an ACME server can ask for."""
        try:
            return validate_value(value)
        except InvalidNameError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_challenge(self) -> Challenge:
        """The validated challenge."""
        name: ChallengeName = self.validated_data["fqdn"]
        return Challenge(name.domain, self.validated_data["value"], name.account_label)


class RawModeSerializer(serializers.Serializer[Challenge]):
    """``{"domain": "<name>", "token": "...", "keyAuth": "<token>.<thumbprint>"}``.

    dns-01 only: lego's RAW body names neither the challenge type nor the ACME account, so the
    dns-account-01 label (derived from the account URL) cannot be known here.
    """

    domain = _strict_char()
    token = _strict_char(required=False)
    keyAuth = _strict_char()  # noqa: N815 - the wire name

    def validate_domain(self, domain: str) -> str:
        """A bare hostname: no trailing dot, no wildcard label (lego strips it)."""
        if domain.endswith("."):
            raise serializers.ValidationError("must not end with a dot")
        try:
            return normalise_challenge_domain(domain)
        except InvalidNameError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Derive the TXT value from the key authorization."""
        try:
            attrs["value"] = value_from_key_authorization(attrs["keyAuth"], attrs.get("token"))
        except InvalidNameError as exc:
            raise serializers.ValidationError({"keyAuth": [str(exc)]}) from exc
        return attrs

    def to_challenge(self) -> Challenge:
        """The validated challenge."""
        return Challenge(domain=self.validated_data["domain"], value=self.validated_data["value"])


RAW_FIELDS = frozenset({"domain", "token", "keyAuth"})
DEFAULT_FIELDS = frozenset({"fqdn", "value"})


def parse_challenge(data: object) -> Challenge:
    """Validate a request body in either mode and return its challenge.

    Raises:
        rest_framework.exceptions.ValidationError: with a message naming the field.
    """
    if not isinstance(data, Mapping):
        raise serializers.ValidationError("body must be a JSON object or a form")
    keys = set(data.keys())
    if keys & RAW_FIELDS and keys & DEFAULT_FIELDS:
        raise serializers.ValidationError(
            "send either fqdn and value, or domain and keyAuth (RAW mode), not both"
        )
    serializer: DefaultModeSerializer | RawModeSerializer
    if keys & RAW_FIELDS:
        serializer = RawModeSerializer(data=data)
    else:
        serializer = DefaultModeSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.to_challenge()
