"""The grammar of names and values (pure functions)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from api.names import (
    InvalidNameError,
    challenge_domain,
    normalise_domain,
    validate_value,
    value_from_key_authorization,
)

VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"


@pytest.mark.parametrize(
    ("fqdn", "domain"),
    [
        ("_acme-challenge.www.example.com.", "www.example.com"),
        ("_acme-challenge.www.example.com", "www.example.com"),
        ("_ACME-Challenge.WWW.Example.COM.", "www.example.com"),
        ("_acme-challenge.xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_challenge_domain_accepts_real_challenge_names(fqdn: str, domain: str) -> None:
    assert challenge_domain(fqdn) == domain


@pytest.mark.parametrize(
    "fqdn",
    [
        "www.example.com.",
        "_acme-challenge.",
        "_acme-challenge.com",
        "_acme-challenge..example.com",
        "_acme-challenge.-bad.example.com",
        "_acme-challenge.bad-.example.com",
        '_acme-challenge.a"b.example.com',
        "_acme-challenge.a b.example.com",
        "_acme-challenge.a;b.example.com",
        "_acme-challenge.a\nb.example.com",
        "_acme-challenge.www.example.com\n",
        "_acme-challenge.*.example.com",
        "_acme-challenge.a_b.example.com",
        "_acme-challenge." + "a" * 64 + ".example.com",
        "_acme-challenge." + ".".join(["abcdefghi"] * 30) + ".com",
    ],
)
def test_challenge_domain_refuses_names_that_are_not_hostnames(fqdn: str) -> None:
    with pytest.raises(InvalidNameError):
        challenge_domain(fqdn)


@pytest.mark.parametrize(
    "value",
    [
        VALUE[:-1],
        VALUE + "A",
        VALUE[:-1] + '"',
        VALUE[:-1] + "\n",
        VALUE + "\n",
        VALUE[:-1] + ";",
        VALUE[:-1] + "=",
        VALUE[:-1] + "+",
        "x" * 256,
        "",
        None,
        43,
    ],
)
def test_validate_value_refuses_anything_but_43_base64url_characters(value: object) -> None:
    with pytest.raises(InvalidNameError):
        validate_value(value)


def test_validate_value_accepts_a_real_digest() -> None:
    assert validate_value(VALUE) == VALUE


def test_raw_mode_value_is_unpadded_base64url_of_sha256_of_key_authorization() -> None:
    key_auth = (
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
    )
    expected = base64.urlsafe_b64encode(hashlib.sha256(key_auth.encode()).digest()).rstrip(b"=")
    assert value_from_key_authorization(key_auth, key_auth.split(".")[0]) == expected.decode()


@pytest.mark.parametrize(
    ("key_auth", "token"),
    [
        ("no-dot-here", None),
        ("tok.en.too.many", None),
        ("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.short", None),
        ("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA." + VALUE, "other-token-0123456789"),
        ('evaGxfADs6pSRb2"Av9IZf17Dt3juxGJ-PCt92wr-oA.' + VALUE, None),
    ],
)
def test_raw_mode_refuses_malformed_key_authorizations(key_auth: str, token: str | None) -> None:
    with pytest.raises(InvalidNameError):
        value_from_key_authorization(key_auth, token)


def test_normalise_domain_strips_the_trailing_dot_and_lower_cases() -> None:
    assert normalise_domain("Example.COM.") == "example.com"
