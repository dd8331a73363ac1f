"""The grammar of names and values (pure functions)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from api.names import (
    MAX_ACCOUNT_CHALLENGE_DOMAIN_LENGTH,
    MAX_CHALLENGE_DOMAIN_LENGTH,
    ChallengeName,
    InvalidNameError,
    normalise_challenge_domain,
    normalise_domain,
    parse_challenge_name,
    validate_value,
    value_from_key_authorization,
)

from tests.dns_backends.contract import account_label, domain_of_length

VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
# The draft's own example (draft-ietf-acme-dns-account-label): this account URL has this label.
DRAFT_ACCOUNT_URL = "https://example.com/acme/acct/ExampleAccount"
DRAFT_LABEL = "ujmmovf2vn55tgye"


@pytest.mark.parametrize(
    ("fqdn", "domain"),
    [
        ("_acme-challenge.www.example.com.", "www.example.com"),
        ("_acme-challenge.www.example.com", "www.example.com"),
        ("_ACME-Challenge.WWW.Example.COM.", "www.example.com"),
        ("_acme-challenge.xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_dns_01_names_give_their_domain_and_no_account_label(fqdn: str, domain: str) -> None:
    assert parse_challenge_name(fqdn) == ChallengeName(domain)


@pytest.mark.parametrize(
    ("fqdn", "domain", "label"),
    [
        (f"_{DRAFT_LABEL}._acme-challenge.www.example.com.", "www.example.com", DRAFT_LABEL),
        (f"_{DRAFT_LABEL}._acme-challenge.example.com", "example.com", DRAFT_LABEL),
        # DNS names are case-insensitive, and every name here is normalised to lower case; a
        # client that forgot to lower-case its base32 still names the record the CA queries.
        (
            f"_{DRAFT_LABEL.upper()}._ACME-CHALLENGE.WWW.Example.COM.",
            "www.example.com",
            DRAFT_LABEL,
        ),
        (
            "_abcdefghijklmnop._acme-challenge.xn--bcher-kva.example",
            "xn--bcher-kva.example",
            "abcdefghijklmnop",
        ),
        (
            "_qrstuvwxyz234567._acme-challenge.a.b.c.example.co.uk",
            "a.b.c.example.co.uk",
            "qrstuvwxyz234567",
        ),
    ],
)
def test_dns_account_01_names_give_their_domain_and_lower_cased_account_label(
    fqdn: str, domain: str, label: str
) -> None:
    name = parse_challenge_name(fqdn)
    assert name == ChallengeName(domain, label)
    assert name.fqdn == f"_{label}._acme-challenge.{domain}"


def test_the_label_of_the_drafts_example_account_is_the_drafts() -> None:
    """The test helper computes labels as the draft does (base32 of SHA-256[:10], lower)."""
    assert account_label(DRAFT_ACCOUNT_URL) == DRAFT_LABEL


def test_labels_real_clients_compute_from_account_urls_are_all_accepted() -> None:
    """Labels of many account URLs (Let's Encrypt's and pebble's shapes) use all 32 digits."""
    urls = [f"https://acme-v02.api.letsencrypt.org/acme/acct/{n}" for n in range(200)]
    urls += [f"https://127.0.0.1:14000/my-account/{n:x}" for n in range(200)]
    seen: set[str] = set()
    for url in urls:
        label = account_label(url)
        seen.update(label)
        fqdn = f"_{label}._acme-challenge.www.example.com."
        assert parse_challenge_name(fqdn) == ChallengeName("www.example.com", label)
    assert seen == set("abcdefghijklmnopqrstuvwxyz234567")


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
def test_challenge_names_whose_domain_is_not_a_hostname_are_refused(fqdn: str) -> None:
    with pytest.raises(InvalidNameError):
        parse_challenge_name(fqdn)
    with pytest.raises(InvalidNameError):  # the same name behind an account label
        parse_challenge_name(f"_{DRAFT_LABEL}.{fqdn}")


@pytest.mark.parametrize(
    "fqdn",
    [
        "_abc._acme-challenge.example.com",
        "_" + "a" * 15 + "._acme-challenge.example.com",
        "_" + "a" * 17 + "._acme-challenge.example.com",
        "_" + DRAFT_LABEL[:-1] + "0._acme-challenge.example.com",  # 0, 1, 8, 9 are not base32
        "_" + DRAFT_LABEL[:-1] + "1._acme-challenge.example.com",
        "_" + DRAFT_LABEL[:-1] + "8._acme-challenge.example.com",
        "_" + DRAFT_LABEL[:-1] + "9._acme-challenge.example.com",
        "_" + DRAFT_LABEL[:-2] + "==._acme-challenge.example.com",  # padding
        "_" + DRAFT_LABEL[:-1] + "-._acme-challenge.example.com",
        "_" + DRAFT_LABEL[:-1] + "_._acme-challenge.example.com",
        "__" + DRAFT_LABEL + "._acme-challenge.example.com",
        "_" + DRAFT_LABEL + " ._acme-challenge.example.com",
        "_._acme-challenge.example.com",
        "__acme-challenge._acme-challenge.example.com",
    ],
)
def test_an_account_label_that_is_not_16_base32_characters_is_refused_by_name(fqdn: str) -> None:
    with pytest.raises(InvalidNameError, match="account label must be 16 base32 characters"):
        parse_challenge_name(fqdn)


@pytest.mark.parametrize(
    "fqdn",
    [
        "www.example.com.",
        "_acme-challenge",
        DRAFT_LABEL + "._acme-challenge.example.com",  # no underscore: not an account label
        "www._acme-challenge.example.com",
        f"_{DRAFT_LABEL}._{DRAFT_LABEL}._acme-challenge.example.com",
        f"_{DRAFT_LABEL}.www._acme-challenge.example.com",
        f"_{DRAFT_LABEL}.example.com",
        f"_{DRAFT_LABEL}._acme-challenge",
        f"_{DRAFT_LABEL}._acme_challenge.example.com",
        "_acme-challengex.example.com",
    ],
)
def test_nothing_else_before_acme_challenge_is_accepted(fqdn: str) -> None:
    with pytest.raises(InvalidNameError, match="must start with _acme-challenge"):
        parse_challenge_name(fqdn)


@pytest.mark.parametrize(
    "fqdn",
    [
        f"_{DRAFT_LABEL}._acme-challenge.",
        f"_{DRAFT_LABEL}._acme-challenge.com",
        f"_{DRAFT_LABEL}._acme-challenge._acme-challenge.example.com",
        f"_acme-challenge._{DRAFT_LABEL}.example.com",  # the label after, not before
        f"_{DRAFT_LABEL}._acme-challenge.\u212aexample.com",
        "_" + DRAFT_LABEL[:-1] + "\u212a._acme-challenge.example.com",  # Kelvin sign: lower() = k
        "_acme-challenge.\u212aexample.com",
    ],
)
def test_the_name_after_acme_challenge_must_be_an_ascii_hostname_in_both_forms(fqdn: str) -> None:
    with pytest.raises(InvalidNameError, match=r"domain name|non-empty"):
        parse_challenge_name(fqdn)


def test_non_ascii_letters_that_lower_case_to_ascii_are_refused() -> None:
    """``"\u212a".lower() == "k"``: lower-casing first would turn them into a granted name."""
    with pytest.raises(InvalidNameError, match="letters, digits and hyphens"):
        normalise_domain("\u212a.example.com")


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


def test_the_longest_challenge_domain_leaves_room_for_the_challenge_label() -> None:
    """``_acme-challenge.`` is 16 characters; the whole name must fit in DNS's 253."""
    assert MAX_CHALLENGE_DOMAIN_LENGTH == 237
    longest = domain_of_length(237)
    assert normalise_challenge_domain(longest) == longest
    name = parse_challenge_name(f"_acme-challenge.{longest}.")
    assert name == ChallengeName(longest)
    assert len(name.fqdn) == 253


@pytest.mark.parametrize("length", [238, 240, 253])
def test_a_domain_valid_alone_is_refused_when_its_challenge_name_is_too_long(length: int) -> None:
    domain = domain_of_length(length)
    assert normalise_domain(domain) == domain  # a valid name on its own (grants may hold it)
    with pytest.raises(InvalidNameError, match="too long"):
        normalise_challenge_domain(domain)
    with pytest.raises(InvalidNameError, match="too long"):
        parse_challenge_name(f"_acme-challenge.{domain}.")


def test_the_longest_account_challenge_domain_leaves_room_for_both_labels() -> None:
    """``_<16>.`` adds 18 characters: 219 is the longest domain dns-account-01 can name."""
    assert MAX_ACCOUNT_CHALLENGE_DOMAIN_LENGTH == 219
    longest = domain_of_length(219)
    name = parse_challenge_name(f"_{DRAFT_LABEL}._acme-challenge.{longest}.")
    assert name == ChallengeName(longest, DRAFT_LABEL)
    assert len(name.fqdn) == 253


@pytest.mark.parametrize("length", [220, 237])
def test_a_domain_that_fits_dns_01_is_refused_when_its_account_challenge_name_is_too_long(
    length: int,
) -> None:
    domain = domain_of_length(length)
    assert parse_challenge_name(f"_acme-challenge.{domain}.") == ChallengeName(domain)
    with pytest.raises(InvalidNameError) as refused:
        parse_challenge_name(f"_{DRAFT_LABEL}._acme-challenge.{domain}.")
    assert str(refused.value) == (
        "is too long: _<account label>._acme-challenge.<name> must be at most 253 characters"
    )


def test_normalise_domain_strips_the_trailing_dot_and_lower_cases() -> None:
    assert normalise_domain("Example.COM.") == "example.com"


@pytest.mark.django_db
def test_a_grant_name_is_refused_before_lower_casing_could_turn_it_into_another() -> None:
    """``Domain.save`` lower-cases: the Kelvin sign would become ``k`` and pass as ASCII."""
    from api.models import Domain
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="ASCII"):
        Domain(fqdn="\u212aexample.com").save()
    assert not Domain.objects.filter(fqdn="kexample.com").exists()
