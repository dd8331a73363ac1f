"""POST /present and /cleanup: modes, answers and the state they leave in the backend."""

from __future__ import annotations

import hashlib
import json
from base64 import urlsafe_b64encode

import pytest
from django.test import Client
from dns_backends import DnsBackendUnavailableError
from dns_backends.memory import MemoryBackend
from rest_framework.test import APIClient

from tests.conftest import Account, make_account

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
    def present(self, fqdn: str, value: str) -> None:
        raise DnsBackendUnavailableError("git remote unreachable, try again later")


def test_backend_unavailable_answers_503_with_its_message(
    machine: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _UnavailableBackend(["example.com"])
    monkeypatch.setattr("api.records.get_backend", lambda: backend)
    status, body = post(machine.client(), "/present", {"fqdn": NAME + ".", "value": VALUE})
    assert (status, body) == (503, {"detail": "git remote unreachable, try again later"})


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
