"""acme-dns ``POST /update`` and ``GET /health``: answers, checks and what reaches the backend.

Against the real PostgreSQL and the in-memory backend (itself checked by the backend contract
suite); the error bodies are acme-dns's (SPEC 4.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from api.acmedns.accounts import NewAccount, create_account, set_allowfrom
from api.acmedns.config import AcmeDnsConfig, set_acmedns_config
from api.acmedns.updates import update_txt
from api.grants import revoke
from api.models import MachineCredentialScope
from django.test.utils import override_settings
from django.utils import timezone
from dns_backends import Deadline, DnsBackendUnavailableError
from dns_backends.memory import MemoryBackend
from httprequest_lego_provider.environment import ClientAddressConfig
from rest_framework.test import APIClient

from tests.conftest import Account

pytestmark = pytest.mark.django_db

ZONE = "acme-dns.example.com"
VALUES = [
    "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
    "zE6Fq6AtvJX6Lp8Z8VHbGv6ZpvCdpX_TUfXr6nS8pV0",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
]
DIRECT_NAME = "_acme-challenge.www.example.com"


@pytest.fixture(autouse=True)
def acmedns_zone() -> Iterator[AcmeDnsConfig]:
    config = AcmeDnsConfig(zone=ZONE)
    set_acmedns_config(config)
    yield config
    set_acmedns_config(None)


def new_account(
    username: str = "machine",
    domain: str = "www.example.com",
    *,
    delegated: bool = False,
    allowfrom: list[str] | None = None,
) -> NewAccount:
    return create_account(
        username,
        domain,
        delegated=delegated,
        allowfrom=allowfrom or [],
        config=AcmeDnsConfig(zone=ZONE),
    )


def update(
    new: NewAccount,
    body: object = None,
    *,
    key: str | None = None,
    raw: bytes | None = None,
    **extra: str,
) -> tuple[int, Any]:
    """POST /update as goacmedns (lego's client) does: JSON body, credentials in headers.

    ``extra`` holds WSGI variables: ``REMOTE_ADDR``, ``HTTP_<HEADER>``.
    """
    if body is None:
        body = {"subdomain": str(new.account.subdomain), "txt": VALUES[0]}
    data = raw if raw is not None else json.dumps(body).encode()
    meta: dict[str, Any] = {
        "HTTP_X_API_USER": str(new.account.username),
        "HTTP_X_API_KEY": new.key if key is None else key,
        **extra,
    }
    response = APIClient().post("/update", data=data, content_type="application/json", **meta)
    content = response.content
    return response.status_code, json.loads(content) if content else None


def body_for(new: NewAccount, value: str) -> dict[str, str]:
    return {"subdomain": str(new.account.subdomain), "txt": value}


def test_health_answers_200_without_credentials(db: None) -> None:
    response = APIClient().get("/health")
    assert (response.status_code, response.content) == (200, b"")


def test_update_answers_200_with_the_value_and_publishes_it_at_the_challenge_name(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """A direct account writes _acme-challenge.<name> itself: no CNAME needed."""
    new = new_account()
    assert new.account.fulldomain == DIRECT_NAME
    assert update(new) == (200, {"txt": VALUES[0]})
    assert memory_backend.values(DIRECT_NAME) == {VALUES[0]}


def test_delegated_account_publishes_under_the_delegation_zone(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = new_account(delegated=True)
    fulldomain = f"{new.account.subdomain}.{ZONE}"
    assert new.account.fulldomain == fulldomain
    assert update(new) == (200, {"txt": VALUES[0]})
    assert memory_backend.values(fulldomain) == {VALUES[0]}
    assert memory_backend.values(DIRECT_NAME) == set()


@pytest.mark.parametrize("delegated", [False, True])
def test_an_account_keeps_its_two_most_recent_values_and_withdraws_older_ones(
    machine: Account, memory_backend: MemoryBackend, delegated: bool
) -> None:
    """Apex and wildcard need two values at once; a third update removes the oldest from DNS."""
    new = new_account(delegated=delegated)
    name = new.account.fulldomain
    for value in VALUES[:2]:
        assert update(new, body_for(new, value))[0] == 200
    assert memory_backend.values(name) == set(VALUES[:2])
    assert update(new, body_for(new, VALUES[2]))[0] == 200
    assert memory_backend.values(name) == set(VALUES[1:3])
    assert update(new, body_for(new, VALUES[3]))[0] == 200
    assert memory_backend.values(name) == set(VALUES[2:4])
    new.account.refresh_from_db()
    assert new.account.txt_values == VALUES[2:4]


def test_repeating_a_value_keeps_it_once_and_counts_it_as_the_newest(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = new_account()
    for value in (VALUES[0], VALUES[1], VALUES[0], VALUES[2]):
        assert update(new, body_for(new, value))[0] == 200
    assert memory_backend.values(DIRECT_NAME) == {VALUES[0], VALUES[2]}


def test_update_leaves_values_of_the_httpreq_api_at_the_same_name_alone(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """Only the account's own values are withdrawn: another client's value at the name stays."""
    other = "cccccccccccccccccccccccccccccccccccccccccc0"
    response = machine.client().post(
        "/present", {"fqdn": DIRECT_NAME + ".", "value": other}, format="json"
    )
    assert response.status_code == 200
    new = new_account()
    for value in VALUES[:3]:
        assert update(new, body_for(new, value))[0] == 200
    assert memory_backend.values(DIRECT_NAME) == {other, *VALUES[1:3]}


def test_wrong_key_answers_401_forbidden_and_writes_nothing(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = new_account()
    assert update(new, key=new.key[:-1] + ("A" if new.key[-1] != "A" else "B")) == (
        401,
        {"error": "forbidden"},
    )
    assert memory_backend.values(DIRECT_NAME) == set()
    new.account.refresh_from_db()
    assert new.account.txt_values == []


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"HTTP_X_API_USER": "not-a-uuid"},
        {"HTTP_X_API_USER": "00000000-0000-4000-8000-000000000000"},
        {"HTTP_X_API_KEY": ""},
        {"HTTP_X_API_KEY": "x" * 10_000},
    ],
    ids=["no-headers", "bad-user", "unknown-user", "empty-key", "huge-key"],
)
def test_bad_credentials_answer_401_forbidden(
    machine: Account, memory_backend: MemoryBackend, headers: dict[str, str] | None
) -> None:
    """None sends no credential headers at all; the others replace one good header."""
    new = new_account()
    client = APIClient()
    sent: dict[str, Any] = {}
    if headers is not None:
        sent = {"HTTP_X_API_USER": str(new.account.username), "HTTP_X_API_KEY": new.key}
        sent |= headers
    response = client.post(
        "/update", data=json.dumps(body_for(new, VALUES[0])), content_type="application/json",
        **sent,
    )  # fmt: skip
    assert (response.status_code, response.json()) == (401, {"error": "forbidden"})
    assert memory_backend.values(DIRECT_NAME) == set()


def test_another_accounts_subdomain_answers_401_and_writes_nowhere(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    mine = new_account()
    theirs = new_account(delegated=True)
    assert update(mine, body_for(theirs, VALUES[0])) == (401, {"error": "forbidden"})
    assert memory_backend.values(mine.account.fulldomain) == set()
    assert memory_backend.values(theirs.account.fulldomain) == set()


def test_address_outside_allowfrom_answers_401_and_writes_nothing(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = new_account(allowfrom=["192.0.2.0/24"])
    assert update(new, REMOTE_ADDR="198.51.100.7") == (401, {"error": "forbidden"})
    assert memory_backend.values(DIRECT_NAME) == set()
    assert update(new, REMOTE_ADDR="192.0.2.77") == (200, {"txt": VALUES[0]})


def test_changed_allowfrom_applies_to_the_next_update(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = new_account(allowfrom=["192.0.2.0/24"])
    set_allowfrom(new.account, ["2001:db8::/32"])
    assert update(new, REMOTE_ADDR="192.0.2.77")[0] == 401
    assert update(new, REMOTE_ADDR="2001:db8::1")[0] == 200


def test_proxy_header_is_ignored_unless_configured(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """A client cannot claim an allowed address by sending the header itself."""
    new = new_account(allowfrom=["192.0.2.0/24"])
    assert update(new, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="192.0.2.1")[0] == 401
    assert memory_backend.values(DIRECT_NAME) == set()


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("192.0.2.1", 200),
        ("198.51.100.9, 192.0.2.1", 200),  # the proxy appends the peer it saw
        ("192.0.2.1, 198.51.100.9", 401),  # the client's own claim comes first
        ("not-an-address", 401),
        (None, 401),  # missing: the origin is unknown, a restricted account refuses it
    ],
)
def test_configured_proxy_header_gives_the_address_its_last_entry(
    machine: Account, memory_backend: MemoryBackend, header: str | None, status: int
) -> None:
    new = new_account(allowfrom=["192.0.2.0/24"])
    with override_settings(CLIENT_ADDRESS=ClientAddressConfig(proxy_hops=1)):
        if header is None:
            answer = update(new, REMOTE_ADDR="10.0.0.1")
        else:
            answer = update(new, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=header)
    assert answer[0] == status
    assert memory_backend.values(DIRECT_NAME) == ({VALUES[0]} if status == 200 else set())


@pytest.mark.parametrize("delegated", [False, True])
def test_revoking_the_grant_stops_the_account(
    machine: Account, memory_backend: MemoryBackend, delegated: bool
) -> None:
    new = new_account(delegated=delegated)
    revoke("machine", ["www.example.com"], [])
    assert update(new) == (401, {"error": "forbidden"})
    assert memory_backend.values(new.account.fulldomain) == set()


def test_deactivating_the_user_stops_the_account(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = new_account()
    machine.user.is_active = False
    machine.user.save()
    assert update(new)[0] == 401


def test_backend_failure_answers_503_and_records_nothing_in_dns(
    machine: Account, memory_backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise DnsBackendUnavailableError()

    new = new_account()
    monkeypatch.setattr(memory_backend, "present", unavailable)
    status, body = update(new)
    assert status == 503
    assert body["error"] == "dns_backend_error"
    assert memory_backend.values(DIRECT_NAME) == set()


@pytest.mark.parametrize("delegated", [False, True])
@pytest.mark.parametrize(
    "failure",
    [DnsBackendUnavailableError, SystemExit],
    ids=["answer-lost-after-the-write", "worker-killed-after-the-write"],
)
def test_a_value_that_reached_dns_is_withdrawn_later_however_its_update_ended(
    machine: Account,
    memory_backend: MemoryBackend,
    monkeypatch: pytest.MonkeyPatch,
    delegated: bool,
    failure: type[BaseException],
) -> None:
    """The value is recorded before it is published, in a transaction of its own.

    The backend's write lands, then the update stops: a deadline running out after the
    write (the 503 a client sees), or the worker killed (gunicorn's timeout ends a worker with
    ``SystemExit``), which rolls back the update's open transaction. The value is still on
    the account, so the two updates that follow withdraw it like any old value.
    """
    new = new_account(delegated=delegated)
    real_present = memory_backend.present

    def lands_then_fails(fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        real_present(fqdn, value, deadline)
        raise failure()

    monkeypatch.setattr(memory_backend, "present", lands_then_fails)
    with pytest.raises(failure):
        update_txt(new.account, VALUES[0])
    assert memory_backend.values(new.account.fulldomain) == {VALUES[0]}
    new.account.refresh_from_db()
    assert new.account.txt_values == [VALUES[0]]
    monkeypatch.setattr(memory_backend, "present", real_present)
    for value in VALUES[1:3]:
        assert update(new, body_for(new, value))[0] == 200
    assert memory_backend.values(new.account.fulldomain) == set(VALUES[1:3])


@pytest.mark.parametrize("delegated", [False, True])
def test_an_update_withdrawing_old_values_is_one_backend_change_with_the_requests_deadline(
    machine: Account,
    memory_backend: MemoryBackend,
    monkeypatch: pytest.MonkeyPatch,
    delegated: bool,
) -> None:
    """Publishing the new value and withdrawing the oldest are one write, not two.

    Two writes cost two commits and pushes (twice a present's time) and, with a fresh deadline
    per call, could outlive ``DJANGO_REQUEST_DEADLINE``; one change is also atomic.
    """
    new = new_account(delegated=delegated)
    for value in VALUES[:2]:
        assert update(new, body_for(new, value))[0] == 200
    seen: list[tuple[str, Deadline | None]] = []

    def recording(name: str) -> Callable[..., None]:
        real = getattr(memory_backend, name)

        def call(*args: Any) -> None:
            seen.append((name, args[-1]))
            real(*args)

        return call

    for name in ("present", "cleanup", "replace"):
        monkeypatch.setattr(memory_backend, name, recording(name))
    assert update(new, body_for(new, VALUES[2]))[0] == 200
    assert [call for call, _ in seen] == ["replace"]
    assert isinstance(seen[0][1], Deadline)
    assert memory_backend.values(new.account.fulldomain) == set(VALUES[1:3])


def test_a_failed_update_publishes_nothing_and_withdraws_nothing(
    machine: Account, memory_backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change is whole or absent: the answer says so, and the values in DNS stay as they were.

    The next update withdraws the old values as usual.
    """
    new = new_account()
    for value in VALUES[:2]:
        update(new, body_for(new, value))
    real_replace = memory_backend.replace

    def failing(*args: Any) -> None:
        raise DnsBackendUnavailableError()

    monkeypatch.setattr(memory_backend, "replace", failing)
    status, _ = update(new, body_for(new, VALUES[2]))
    assert status == 503
    assert memory_backend.values(DIRECT_NAME) == set(VALUES[:2])
    monkeypatch.setattr(memory_backend, "replace", real_replace)
    assert update(new, body_for(new, VALUES[3]))[0] == 200
    assert memory_backend.values(DIRECT_NAME) == {VALUES[3]}
    new.account.refresh_from_db()
    assert new.account.txt_values == [VALUES[2], VALUES[3]]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", (400, {"error": "malformed_json_payload"})),
        (b"{", (400, {"error": "malformed_json_payload"})),
        (b"[]", (400, {"error": "malformed_json_payload"})),
        (b'"text"', (400, {"error": "malformed_json_payload"})),
        (b"null", (400, {"error": "malformed_json_payload"})),
        (b"\xff\xfe{}", (400, {"error": "malformed_json_payload"})),
        (b"[" * 100_00 + b"]" * 100_00, (400, {"error": "malformed_json_payload"})),
        (b'{"n": ' + b"1" * 5000 + b"}", (400, {"error": "malformed_json_payload"})),
        (b"x" * (65 * 1024), (413, {"error": "body_too_large"})),
        # acme-dns compares the subdomain as a string before any other check of the body.
        (b"{}", (401, {"error": "forbidden"})),
        (b'{"subdomain": 5, "txt": "x"}', (401, {"error": "forbidden"})),
        (b'{"subdomain": "../etc", "txt": "x"}', (401, {"error": "forbidden"})),
        (b'{"subdomain": ["a"], "txt": "x"}', (401, {"error": "forbidden"})),
        (b'{"subdomain": null, "txt": "x"}', (401, {"error": "forbidden"})),
        (b'{"subdomain": "UPPER", "txt": "x"}', (401, {"error": "forbidden"})),
        (b'{"subdomain": "{SUB}", "txt": "x"}', (401, {"error": "forbidden"})),
        (b'{"subdomain": " SUB", "txt": "x"}', (401, {"error": "forbidden"})),
        (b'{"subdomain": "SUB", "txt": "x"}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB"}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB", "txt": null}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB", "txt": 43}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB", "txt": "short"}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB", "txt": "' + b"a" * 42 + b'\\""}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB", "txt": "' + b"a" * 42 + b'\\n"}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB", "txt": "' + b"a" * 44 + b'"}', (400, {"error": "bad_txt"})),
        (b'{"subdomain": "SUB", "txt": "' + b"a" * 42 + b'="}', (400, {"error": "bad_txt"})),
    ],
)
def test_malformed_bodies_get_a_4xx_and_write_nothing(
    machine: Account, memory_backend: MemoryBackend, raw: bytes, expected: tuple[int, Any]
) -> None:
    """With good credentials; ``SUB`` is the account's subdomain, ``UPPER`` it in upper case.

    acme-dns refuses the upper-case form: it compares strings, not UUIDs.
    """
    new = new_account()
    subdomain = str(new.account.subdomain)
    raw = raw.replace(b"UPPER", subdomain.upper().encode()).replace(b"SUB", subdomain.encode())
    assert update(new, raw=raw) == expected
    assert memory_backend.values(DIRECT_NAME) == set()


@pytest.mark.parametrize(
    "template",
    [
        # What cpu/goacmedns v0.1.1 marshals (an untagged Go struct: field names as keys), the
        # client of lego 4.0 to 4.21 and of cert-manager's acmeDNS solver; seen on the wire
        # from lego 4.9.1 built with its acme-dns provider (a one-off run, not in CI).
        b'{"SubDomain":"<sub>","Txt":"<value>"}',
        b'{"SUBDOMAIN": "<sub>", "TXT": "<value>"}',
        # Go's decoder lets the last member matching a field win, whatever its case.
        b'{"subdomain": "other", "SubDomain": "<sub>", "txt": "x", "Txt": "<value>"}',
        b'{"SubDomain": "other", "subdomain": "<sub>", "Txt": "<value>"}',
    ],
)
def test_body_keys_match_in_any_ascii_case_as_acme_dns_decodes_them(
    machine: Account, memory_backend: MemoryBackend, template: bytes
) -> None:
    """acme-dns decodes the body with Go's encoding/json, which ignores the keys' case."""
    new = new_account()
    raw = template.replace(b"<sub>", str(new.account.subdomain).encode())
    assert update(new, raw=raw.replace(b"<value>", VALUES[0].encode())) == (
        200,
        {"txt": VALUES[0]},
    )
    assert memory_backend.values(DIRECT_NAME) == {VALUES[0]}


def test_a_key_that_only_unicode_case_folding_matches_is_not_the_field(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """No client sends U+017F for "s"; the field stays missing, as for any unknown key."""
    new = new_account()
    raw = f'{{"\u017fubdomain": "{new.account.subdomain}", "txt": "{VALUES[0]}"}}'.encode()
    assert update(new, raw=raw) == (401, {"error": "forbidden"})
    assert memory_backend.values(DIRECT_NAME) == set()


def test_a_scoped_users_account_gets_401_from_outside_its_networks_and_after_its_expiry(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    """The user's machine scope (allowed networks, expiry) binds its acme-dns accounts too."""
    new = new_account()
    MachineCredentialScope.objects.create(user=machine.user, allowed_networks=["192.0.2.0/24"])
    assert update(new, REMOTE_ADDR="198.51.100.7") == (401, {"error": "forbidden"})
    assert memory_backend.values(DIRECT_NAME) == set()
    assert update(new, REMOTE_ADDR="192.0.2.7") == (200, {"txt": VALUES[0]})
    MachineCredentialScope.objects.filter(user=machine.user).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert update(new, body_for(new, VALUES[1]), REMOTE_ADDR="192.0.2.7") == (
        401,
        {"error": "forbidden"},
    )
    assert memory_backend.values(DIRECT_NAME) == {VALUES[0]}
