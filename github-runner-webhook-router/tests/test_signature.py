"""Signature checking: GitHub's documented vector and the ways a header can be wrong."""

from __future__ import annotations

import pytest
from webhook_router.errors import SignatureMismatchError, SignatureMissingError
from webhook_router.signature import sign, verify

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
EXPECTED = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_sign_matches_githubs_documented_test_vector() -> None:
    assert sign(SECRET, BODY) == EXPECTED


def test_verify_accepts_githubs_documented_test_vector() -> None:
    assert verify([SECRET], BODY, EXPECTED) == 0


def test_verify_during_rotation_accepts_either_secret_and_says_which_matched() -> None:
    assert verify([b"new secret", SECRET], BODY, EXPECTED) == 1
    assert verify([SECRET, b"new secret"], BODY, EXPECTED) == 0
    assert verify([b"new", SECRET], BODY, sign(b"new", BODY)) == 0


def test_verify_refuses_a_signature_by_no_listed_secret() -> None:
    with pytest.raises(SignatureMismatchError):
        verify([b"one", b"two"], BODY, EXPECTED)


def test_verify_raises_missing_when_no_header() -> None:
    with pytest.raises(SignatureMissingError):
        verify([SECRET], BODY, None)


@pytest.mark.parametrize(
    "header",
    [
        "",
        EXPECTED[:-1],
        EXPECTED.replace("sha256=", "sha1="),
        EXPECTED.upper(),
        "sha256=" + "0" * 64,
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1\u00e9",
        "sha256=\u2603",
    ],
    ids=["empty", "truncated", "wrong-prefix", "upper-case", "zeros", "latin1", "non-ascii"],
)
def test_verify_raises_mismatch_for_wrong_or_non_ascii_headers(header: str) -> None:
    with pytest.raises(SignatureMismatchError):
        verify([SECRET], BODY, header)


def test_verify_raises_mismatch_when_body_changed_by_one_byte() -> None:
    with pytest.raises(SignatureMismatchError):
        verify([SECRET], BODY + b" ", EXPECTED)
