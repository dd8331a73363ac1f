"""The zone file fragment format, on bytes: what is written, found and removed."""

from __future__ import annotations

import pytest
from dns_backends.git.zonefile import add_value, normalise, remove_value, values_at

from tests.dns_backends.contract import token

ZONE = "example.com"
NAME = "_acme-challenge.www.example.com"
A, B = token("a"), token("b")


def test_added_record_is_the_reference_line() -> None:
    assert add_value(b"; zone\n", ZONE, NAME, A) == (
        b'; zone\n_acme-challenge.www 600 IN TXT "' + A.encode() + b'"\n'
    )


def test_adding_to_a_file_without_final_newline_starts_a_new_line() -> None:
    assert (
        add_value(b"www IN A 192.0.2.1", ZONE, NAME, A)
        .splitlines()[1]
        .startswith(b"_acme-challenge.www 600")
    )


def test_adding_an_existing_value_returns_the_file_unchanged() -> None:
    content = add_value(b"", ZONE, NAME, A)
    assert add_value(content, ZONE, NAME, A) is content


def test_two_values_at_one_name_are_kept_and_removed_one_by_one() -> None:
    content = add_value(add_value(b"", ZONE, NAME, A), ZONE, NAME, B)
    assert values_at(content, ZONE, NAME) == {A, B}
    assert values_at(remove_value(content, ZONE, NAME, A), ZONE, NAME) == {B}


def test_removal_matches_name_and_value_exactly() -> None:
    other = "_acme-challenge.example.com"
    content = add_value(add_value(b"", ZONE, NAME, A), ZONE, other, A)
    assert values_at(remove_value(content, ZONE, NAME, A), ZONE, other) == {A}
    assert remove_value(content, ZONE, NAME, B) is content


@pytest.mark.parametrize(
    "line",
    [
        b'_acme-challenge.www 600 IN TXT "{v}"',
        b'_acme-challenge.www\tIN\t300\tTXT\t"{v}"',
        b'_acme-challenge.www txt "{v}" ; added by hand',
        b'_acme-challenge.www.example.com. 600 IN TXT "{v}"',
        b'_Acme-Challenge.WWW 600 in txt "{v}"\r',
    ],
)
def test_records_are_found_in_every_spelling_bind_accepts(line: bytes) -> None:
    content = b"; before\n" + line.replace(b"{v}", A.encode()) + b"\n; after\n"
    assert values_at(content, ZONE, NAME) == {A}
    assert remove_value(content, ZONE, NAME, A) == b"; before\n; after\n"


def test_origin_directives_are_followed_when_reading_and_writing() -> None:
    content = b'$ORIGIN www.example.com.\n_acme-challenge 600 IN TXT "' + A.encode() + b'"\n'
    assert values_at(content, ZONE, NAME) == {A}
    added = add_value(content, ZONE, NAME, B)
    assert added.endswith(f'{NAME}. 600 IN TXT "{B}"\n'.encode())
    assert values_at(added, ZONE, NAME) == {A, B}


def test_comments_and_other_records_are_never_matched() -> None:
    content = (
        b'; _acme-challenge.www 600 IN TXT "' + A.encode() + b'"\n'
        b"_acme-challenge.www 600 IN CNAME elsewhere.example.net.\n"
        b'other 600 IN TXT "' + A.encode() + b'"\n'
    )
    assert values_at(content, ZONE, NAME) == set()
    assert remove_value(content, ZONE, NAME, A) is content


@pytest.mark.parametrize(
    ("fqdn", "value", "expected"),
    [
        ("_acme-challenge.example.com", A, ("_acme-challenge.example.com", A)),
        ("_ACME-Challenge.Example.COM.", A, ("_acme-challenge.example.com", A)),
        ("_acme-challenge.x-1.example.co.uk", A, ("_acme-challenge.x-1.example.co.uk", A)),
    ],
)
def test_valid_names_and_values_are_normalised(
    fqdn: str, value: str, expected: tuple[str, str]
) -> None:
    assert normalise(fqdn, value) == expected


@pytest.mark.parametrize(
    ("fqdn", "value"),
    [
        ("_acme-challenge.example.com", A[:-1] + '"'),
        ("_acme-challenge.example.com", A[:-1] + "\n"),
        ("_acme-challenge.example.com", A[:-1] + "="),
        ("_acme-challenge.example.com", A + "x"),
        ("_acme-challenge.example.com", "x" * 3 * 1024 * 1024),
        ("_acme-challenge.example.com", ""),
        ("_acme-challenge.example.com\n", A),
        ("_acme-challenge example.com", A),
        ("_acme-challenge.ex;ample.com", A),
        ("_acme-challenge.exämple.com", A),
        ("_acme-challenge..com", A),
        ("com", A),
        ("a" * 64 + ".example.com", A),
        (".".join(["abcdefgh"] * 32) + ".com", A),
    ],
)
def test_names_and_values_that_could_break_a_zone_file_are_refused(fqdn: str, value: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        normalise(fqdn, value)
