"""POST /present and /cleanup: modes, answers and the state they leave in the backend."""

from __future__ import annotations

import hashlib
import json
from base64 import urlsafe_b64encode

import pytest
from django.db import OperationalError
from django.test import Client, override_settings
from dns_backends import (
    Deadline,
    DeadlineExceededError,
    DnsBackendUnavailableError,
    InvalidRecordError,
)
from dns_backends.memory import MemoryBackend
from rest_framework.test import APIClient

from tests.conftest import Account, make_account
from tests.dns_backends.contract import account_label, domain_of_length

pytestmark = pytest.mark.django_db

VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
OTHER = "zE6Fq6AtvJX6Lp8Z8VHbGv6ZpvCdpX_TUfXr6nS8pV0"
NAME = "_acme-challenge.www.example.com"


def post(client: APIClient, path: str, body: object) -> tuple[int, dict[str, object]]:
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.mark.parametrize("path", ["/present", "/present/"])
def test_present_answers_200_echoing_the_record_and_publishes_it(
    machine: Account, memory_backend: MemoryBackend, path: str
) -> None:
    status, body = post(machine.client(), path, {"fqdn": NAME + ".", "value": VALUE})
    assert (status, body) == (200, {"fqdn": NAME + ".", "value": VALUE})
    assert memory_backend.values(NAME) == {VALUE}


def test_present_accepts_a_form_encoded_body(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    response = machine.client().post("/present", {"fqdn": NAME + ".", "value": VALUE})
    assert response.status_code == 200
    assert memory_backend.values(NAME) == {VALUE}


def test_apex_and_wildcard_values_coexist_and_cleanup_removes_only_its_own(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """An order for example.com and *.example.com presents two values at one name."""
    client = machine.client()
    apex = "_acme-challenge.example.com."
    assert post(client, "/present", {"fqdn": apex, "value": VALUE})[0] == 200
    assert post(client, "/present", {"fqdn": apex, "value": OTHER})[0] == 200
    assert memory_backend.values(apex.rstrip(".")) == {VALUE, OTHER}
    assert post(client, "/cleanup", {"fqdn": apex, "value": VALUE})[0] == 200
    assert memory_backend.values(apex.rstrip(".")) == {OTHER}


def test_cleanup_answers_200_echoing_the_record(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    client = machine.client()
    post(client, "/present", {"fqdn": NAME + ".", "value": VALUE})
    status, body = post(client, "/cleanup", {"fqdn": NAME + ".", "value": VALUE})
    assert (status, body) == (200, {"fqdn": NAME + ".", "value": VALUE})
    assert memory_backend.values(NAME) == set()


def test_raw_mode_derives_the_name_and_the_value(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
    key_auth = f"{token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
    expected = urlsafe_b64encode(hashlib.sha256(key_auth.encode()).digest()).rstrip(b"=").decode()
    body = {"domain": "www.example.com", "token": token, "keyAuth": key_auth}
    status, answer = post(machine.client(), "/present", body)
    assert (status, answer) == (200, {"fqdn": NAME + ".", "value": expected})
    assert memory_backend.values(NAME) == {expected}
    assert post(machine.client(), "/cleanup", body)[0] == 200
    assert memory_backend.values(NAME) == set()


# Valid alone, but 256 characters once ``_acme-challenge.`` is added: no backend can hold it.
LONG_DOMAIN = domain_of_length(240, "example.co.uk")
KEY_AUTH = (
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)


@pytest.mark.parametrize("path", ["/present", "/cleanup"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fqdn": f"_acme-challenge.{LONG_DOMAIN}.", "value": VALUE}, "fqdn"),
        ({"domain": LONG_DOMAIN, "keyAuth": KEY_AUTH}, "domain"),
    ],
    ids=["default-mode", "raw-mode"],
)
def test_a_name_too_long_once_the_challenge_label_is_added_answers_400(
    machine: Account, memory_backend: MemoryBackend, path: str, body: dict[str, str], field: str
) -> None:
    """The user may manage the name (it is below example.co.uk); DNS cannot hold its record."""
    status, answer = post(machine.client(), path, body)
    assert status == 400
    assert answer["detail"] == (
        f"{field}: is too long: _acme-challenge.<name> must be at most 253 characters"
    )
    assert memory_backend.values(f"_acme-challenge.{LONG_DOMAIN}") == set()


# dns-account-01 (SPEC 4.2): the label a client computes from its ACME account URL.
LABEL = account_label("https://acme-v02.api.letsencrypt.org/acme/acct/1234567890")
ACCOUNT_NAME = f"_{LABEL}._acme-challenge.www.example.com"


def test_dns_account_01_present_and_cleanup_write_at_the_full_name_under_a_grant_on_the_name(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """The grant on www.example.com covers its dns-account-01 name; dns-01's stays untouched."""
    client = machine.client()
    body = {"fqdn": ACCOUNT_NAME + ".", "value": VALUE}
    assert post(client, "/present", body) == (200, body)
    assert memory_backend.zone_values("example.com", ACCOUNT_NAME) == {VALUE}
    assert memory_backend.values(NAME) == set()
    assert post(client, "/cleanup", body) == (200, body)
    assert memory_backend.values(ACCOUNT_NAME) == set()


def test_dns_account_01_names_are_normalised_to_lower_case_like_every_name(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """An upper-case base32 label names the same DNS record (names are case-insensitive)."""
    fqdn = f"_{LABEL.upper()}._ACME-CHALLENGE.WWW.EXAMPLE.COM."
    status, body = post(machine.client(), "/present", {"fqdn": fqdn, "value": VALUE})
    assert (status, body) == (200, {"fqdn": ACCOUNT_NAME + ".", "value": VALUE})
    assert memory_backend.values(ACCOUNT_NAME) == {VALUE}


@pytest.mark.parametrize("path", ["/present", "/cleanup"])
def test_dns_account_01_for_an_ungranted_name_answers_403_and_writes_nothing(
    machine: Account, memory_backend: MemoryBackend, path: str
) -> None:
    """The grant check judges <name> (other.example.com), never the account label."""
    name = f"_{LABEL}._acme-challenge.other.example.com"
    status, body = post(machine.client(), path, {"fqdn": name + ".", "value": VALUE})
    assert (status, body) == (403, {"detail": f"user machine may not manage {name}"})
    assert memory_backend.values(name) == set()


def test_dns_account_01_under_a_subdomain_grant_covers_names_below_it_only(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """``example.co.uk`` is granted as subdomain: www.example.co.uk yes, the apex itself no."""
    below = f"_{LABEL}._acme-challenge.www.example.co.uk"
    apex = f"_{LABEL}._acme-challenge.example.co.uk"
    assert post(machine.client(), "/present", {"fqdn": below, "value": VALUE})[0] == 200
    assert post(machine.client(), "/present", {"fqdn": apex, "value": VALUE})[0] == 403
    assert memory_backend.values(below) == {VALUE}
    assert memory_backend.values(apex) == set()


LONG_ACCOUNT_DOMAIN = domain_of_length(220)  # fits dns-01 (237), not the 18 characters more


@pytest.mark.parametrize(
    ("fqdn", "message"),
    [
        ("_abc._acme-challenge.www.example.com.", "fqdn: account label must be 16 base32"),
        (f"_{LABEL}x._acme-challenge.www.example.com.", "fqdn: account label must be 16 base32"),
        (f"_{LABEL[:-1]}0._acme-challenge.www.example.com.", "fqdn: account label must be 16"),
        (f"_{LABEL[:-1]}=._acme-challenge.www.example.com.", "fqdn: account label must be 16"),
        (f"_{LABEL}.www._acme-challenge.example.com.", "fqdn: must start with _acme-challenge."),
        (f"{LABEL}._acme-challenge.www.example.com.", "fqdn: must start with _acme-challenge."),
        (f"_{LABEL}._acme-challenge.", "fqdn: must be a non-empty domain name"),
        (f"_{LABEL}._acme-challenge.a_b.example.com.", "fqdn: must be a domain name"),
        (
            f"_{LABEL}._acme-challenge.{LONG_ACCOUNT_DOMAIN}.",
            "fqdn: is too long: _<account label>._acme-challenge.<name> must be at most 253",
        ),
    ],
)
@pytest.mark.parametrize("path", ["/present", "/cleanup"])
def test_malformed_dns_account_01_names_answer_400_naming_the_field(
    machine: Account, memory_backend: MemoryBackend, path: str, fqdn: str, message: str
) -> None:
    status, answer = post(machine.client(), path, {"fqdn": fqdn, "value": VALUE})
    assert status == 400
    assert isinstance(answer["detail"], str)
    assert answer["detail"].startswith(message), answer
    assert memory_backend.values(fqdn.rstrip(".")) == set()


def test_raw_mode_stays_dns_01_only_and_refuses_an_account_label_in_domain(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """The RAW body lego sends (domain, token, keyAuth) names no ACME account: no label.

    A client that put the whole record name into ``domain`` would get a record at
    ``_acme-challenge._<label>._acme-challenge.<name>``; it is refused instead.
    """
    body = {"domain": f"_{LABEL}._acme-challenge.www.example.com", "keyAuth": KEY_AUTH}
    status, answer = post(machine.client(), "/present", body)
    assert status == 400
    assert answer["detail"] == (
        "domain: must be a domain name of letters, digits and hyphens, like example.com"
    )
    assert memory_backend.values(f"_acme-challenge._{LABEL}._acme-challenge.www.example.com") == (
        set()
    )


class _RefusingBackend(MemoryBackend):
    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise InvalidRecordError("the name cannot be held in DNS")


def test_a_record_the_backend_cannot_hold_answers_400_with_its_message(
    machine: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _RefusingBackend(["example.com"])
    monkeypatch.setattr("api.records.get_backend", lambda: backend)
    status, body = post(machine.client(), "/present", {"fqdn": NAME + ".", "value": VALUE})
    assert (status, body) == (400, {"detail": "the name cannot be held in DNS"})


def test_present_without_credentials_answers_401(db: None, memory_backend: MemoryBackend) -> None:
    status, _ = post(APIClient(), "/present", {"fqdn": NAME + ".", "value": VALUE})
    assert status == 401
    assert memory_backend.values(NAME) == set()


def test_present_with_a_wrong_password_answers_401(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=Account(machine.user, "wrong" * 9).basic_auth())
    assert post(client, "/present", {"fqdn": NAME + ".", "value": VALUE})[0] == 401


def test_present_for_an_ungranted_name_answers_403_naming_user_and_name(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    name = "_acme-challenge.other.example.com."
    status, body = post(machine.client(), "/present", {"fqdn": name, "value": VALUE})
    assert status == 403
    assert body == {"detail": "user machine may not manage _acme-challenge.other.example.com"}
    assert memory_backend.values(name.rstrip(".")) == set()


def test_inactive_user_answers_401(machine: Account, memory_backend: MemoryBackend) -> None:
    machine.user.is_active = False
    machine.user.save()
    assert post(machine.client(), "/present", {"fqdn": NAME + ".", "value": VALUE})[0] == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"value": VALUE}, "fqdn: This field is required."),
        ({"fqdn": NAME + "."}, "value: This field is required."),
        ({"fqdn": "www.example.com.", "value": VALUE}, "fqdn: must start with _acme-challenge."),
        ({"fqdn": NAME + ".", "value": VALUE[:-1] + '"'}, "value: must be 43 characters"),
        ({"fqdn": NAME + ".", "value": VALUE[:20] + "\n" + VALUE[21:]}, "value: must be 43"),
        ({"fqdn": NAME + ".", "value": VALUE[:-1] + ";"}, "value: must be 43 characters"),
        ({"fqdn": NAME + ".", "value": VALUE + "\n"}, "value: must be 43 characters"),
        ({"fqdn": NAME + ".", "value": "a" * 256}, "value: must be 43 characters"),
        ({"fqdn": NAME + ".", "value": '"\nexample.com. 600 IN NS evil.'}, "value: must be 43"),
        ({"fqdn": NAME + '".', "value": VALUE}, "fqdn: must be a domain name"),
        ({"fqdn": NAME + ".", "value": None}, "value: This field may not be null."),
        ({"fqdn": NAME + ".", "value": ["a"]}, "value: Not a valid string."),
        ({"fqdn": {"a": 1}, "value": VALUE}, "fqdn: Not a valid string."),
        ({"fqdn": NAME + ".", "value": VALUE, "domain": "x.com"}, "send either fqdn and value"),
        ({"domain": "www.example.com."}, "domain: must not end with a dot"),
        ({"domain": "*.example.com", "keyAuth": "a.b"}, "domain: must be a domain name"),
        ({"domain": "www.example.com", "keyAuth": "nope"}, "keyAuth: keyAuth must be"),
        ({}, "fqdn: This field is required."),
    ],
)
def test_invalid_bodies_answer_400_with_a_message_naming_the_field(
    machine: Account, memory_backend: MemoryBackend, body: dict[str, object], message: str
) -> None:
    status, answer = post(machine.client(), "/present", body)
    assert status == 400
    assert isinstance(answer["detail"], str)
    assert answer["detail"].startswith(message), answer
    assert memory_backend.values(NAME) == set()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"null",
        b"[]",
        b'"string"',
        b"42",
        b"\xff\xfe",
        b"[" * 30_000 + b"]" * 30_000,
        b'{"fqdn": ' + b"1" * 5_000 + b"}",
    ],
    ids=["broken", "null", "list", "string", "number", "not-utf8", "deeply-nested", "huge-int"],
)
def test_bodies_that_are_not_a_json_object_answer_400(
    machine: Account, memory_backend: MemoryBackend, raw: bytes
) -> None:
    response = machine.client().post("/present", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize("size", [70 * 1024, 3 * 1024 * 1024])
def test_oversized_json_bodies_answer_413(
    machine: Account, memory_backend: MemoryBackend, size: int
) -> None:
    body = json.dumps({"fqdn": NAME + ".", "value": "a" * size})
    response = machine.client().post("/present", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large"}


def test_oversized_form_bodies_answer_413(machine: Account, memory_backend: MemoryBackend) -> None:
    response = machine.client().post("/present", {"fqdn": NAME + ".", "value": "a" * 100_000})
    assert response.status_code == 413


def test_unsupported_content_type_answers_415(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    response = machine.client().post("/present", data="x", content_type="text/plain")
    assert response.status_code == 415


def test_get_is_not_allowed(machine: Account) -> None:
    assert machine.client().get("/present").status_code == 405


def test_name_in_no_zone_answers_502_with_the_backend_message(
    db: None, memory_backend: MemoryBackend
) -> None:
    account = make_account("orgowner", domains="www.example.org")
    name = "_acme-challenge.www.example.org."
    status, body = post(account.client(), "/present", {"fqdn": name, "value": VALUE})
    assert status == 502
    assert body == {
        "detail": "no zone found for _acme-challenge.www.example.org: "
        "is this site configured for DNS?"
    }


class _UnavailableBackend(MemoryBackend):
    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise DnsBackendUnavailableError("git remote unreachable, try again later")


def test_backend_unavailable_answers_503_with_its_message(
    machine: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _UnavailableBackend(["example.com"])
    monkeypatch.setattr("api.records.get_backend", lambda: backend)
    status, body = post(machine.client(), "/present", {"fqdn": NAME + ".", "value": VALUE})
    assert (status, body) == (503, {"detail": "git remote unreachable, try again later"})


class _RecordingBackend(MemoryBackend):
    """Keeps the deadline each call was given; fails like a backend whose time ran out."""

    def __init__(self) -> None:
        super().__init__(["example.com"])
        self.deadlines: list[Deadline | None] = []

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        self.deadlines.append(deadline)
        raise DeadlineExceededError(deadline.seconds if deadline else 0, "pushing to the remote")

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        self.present(fqdn, value, deadline)


@override_settings(REQUEST_DEADLINE=4.5)
@pytest.mark.parametrize("path", ["/present", "/cleanup"])
def test_each_request_gives_the_backend_one_deadline_from_the_setting_and_a_503_when_it_ends(
    machine: Account, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    backend = _RecordingBackend()
    monkeypatch.setattr("api.records.get_backend", lambda: backend)
    status, body = post(machine.client(), path, {"fqdn": NAME + ".", "value": VALUE})
    assert (status, body) == (
        503,
        {
            "detail": "the request's deadline of 4.5 s ran out while pushing to the remote: "
            "try again (presenting or cleaning up again is safe)"
        },
    )
    (deadline,) = backend.deadlines
    assert deadline is not None
    assert deadline.seconds == 4.5
    assert 0 < deadline.remaining() <= 4.5


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "text/plain",
        "",
    ],
)
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02",
        b"fqdn=%ff%fe&value=%00",
        b'{"fqdn": "\\u0000", "value": "\\ud800"}',
        b"--xyz\r\nContent-Disposition: form-data; name=fqdn\r\n\r\nx\r\n--xyz--\r\n",
        b'{"fqdn": 1e999, "value": [[[]]]}',
    ],
    ids=["empty", "binary", "bad-percent", "nul-and-surrogate", "multipart", "odd-json"],
)
def test_malformed_requests_never_answer_5xx(
    machine: Account, memory_backend: MemoryBackend, content_type: str, raw: bytes
) -> None:
    client = Client(HTTP_AUTHORIZATION=machine.basic_auth())
    response = client.generic("POST", "/present", raw, content_type=content_type)
    assert 400 <= response.status_code < 500, response.content
    assert response.status_code != 401  # authenticated: the body itself was judged
    assert memory_backend.values(NAME) == set()


class _DatabaseBusyBackend(MemoryBackend):
    """Fails as Django does when the pool hands out no connection in time (PoolTimeout)."""

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise OperationalError("couldn't get a connection after 5.00 sec")


def test_database_that_does_not_answer_in_time_is_a_503_saying_to_retry(
    machine: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.records.get_backend", lambda: _DatabaseBusyBackend(["example.com"]))
    status, body = post(machine.client(), "/present", {"fqdn": NAME + ".", "value": VALUE})
    assert (status, body) == (503, {"detail": "the database is unavailable or busy: try again"})
