"""Record changes in the audit trail: httpreq and acme-dns, applied, refused or failed.

Against the real PostgreSQL and the in-memory backend, through the HTTP endpoints as lego and
acme-dns clients call them; the rows are read back from the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api import audit
from api.acmedns.accounts import NewAccount, create_account
from api.acmedns.config import AcmeDnsConfig, set_acmedns_config
from api.grants import revoke
from api.models import AuditAction, AuditEvent, AuditResult, PublishedRecord
from dns_backends.memory import MemoryBackend
from rest_framework.test import APIClient

from tests.audit_helpers import audit_context, sample  # noqa: F401 - a fixture
from tests.conftest import Account, make_account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_context")]

VALUES = [
    "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
    "2fhvH1G9wA0pe6WTVd7PkZp9hHYiXflNyUEfQLfcklc",
    "wd3tqYY2MfDmZl3b63Su2pJ6J5wqkbUkvmNhT1ZL5fQ",
]
NAME = "_acme-challenge.www.example.com"
ACMEDNS_ZONE = "acme-dns.example.com"


def records() -> list[AuditEvent]:
    actions = (AuditAction.PRESENT, AuditAction.CLEANUP)
    return list(AuditEvent.objects.filter(action__in=actions).order_by("id"))


def httpreq(account: Account, path: str, fqdn: str, value: str, address: str) -> int:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=account.basic_auth())
    return int(client.post(path, {"fqdn": fqdn, "value": value}, format="json").status_code)


def test_a_present_and_its_cleanup_are_recorded_with_user_address_and_digest(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    assert httpreq(machine, "/present", NAME + ".", VALUES[0], "192.0.2.20") == 200
    assert httpreq(machine, "/cleanup", NAME + ".", VALUES[0], "192.0.2.21") == 200
    present, cleanup = records()
    assert (present.action, present.actor, present.via, present.name) == (
        "present",
        "machine",
        "httpreq",
        NAME,
    )
    assert (present.client_address, present.result) == ("192.0.2.20", AuditResult.OK)
    assert present.value_digest == audit.value_digest(VALUES[0])
    assert (cleanup.action, cleanup.client_address, cleanup.result) == (
        "cleanup",
        "192.0.2.21",
        AuditResult.OK,
    )
    assert PublishedRecord.objects.count() == 0


def test_a_present_without_a_grant_is_recorded_as_refused_and_not_remembered(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    other = "_acme-challenge.other.example.com"
    assert httpreq(machine, "/present", other + ".", VALUES[0], "192.0.2.22") == 403
    (row,) = records()
    assert (row.result, row.name, row.actor) == (AuditResult.REFUSED, other, "machine")
    assert row.reason == f"user machine may not manage {other}"
    assert PublishedRecord.objects.count() == 0
    assert memory_backend.values(other) == set()


def test_a_present_the_backend_fails_is_recorded_as_failed_with_its_message(
    memory_backend: MemoryBackend,
) -> None:
    outside = make_account("outside", domains="www.example.org")
    fqdn = "_acme-challenge.www.example.org"
    assert httpreq(outside, "/present", fqdn + ".", VALUES[0], "192.0.2.23") >= 400
    (row,) = records()
    assert (row.result, row.actor, row.via) == (AuditResult.FAILED, "outside", "httpreq")
    assert row.reason.startswith(f"no zone found for {fqdn}")


@pytest.fixture
def acmedns_zone() -> Iterator[None]:
    set_acmedns_config(AcmeDnsConfig(zone=ACMEDNS_ZONE))
    yield
    set_acmedns_config(None)


def acmedns_update(new: NewAccount, value: str, address: str) -> int:
    body = json.dumps({"subdomain": str(new.account.subdomain), "txt": value})
    response = APIClient().post(
        "/update",
        data=body,
        content_type="application/json",
        HTTP_X_API_USER=str(new.account.username),
        HTTP_X_API_KEY=new.key,
        REMOTE_ADDR=address,
    )
    return int(response.status_code)


@pytest.mark.usefixtures("acmedns_zone")
@pytest.mark.parametrize("delegated", [False, True])
def test_acmedns_updates_are_recorded_for_the_owner_via_acme_dns(
    machine: Account, memory_backend: MemoryBackend, delegated: bool
) -> None:
    new = create_account(
        "machine",
        "www.example.com",
        delegated=delegated,
        allowfrom=[],
        config=AcmeDnsConfig(zone=ACMEDNS_ZONE),
    )
    for value in VALUES:
        assert acmedns_update(new, value, "198.51.100.30") == 200
    rows = records()
    assert [(row.action, row.value_digest) for row in rows] == [
        ("present", audit.value_digest(VALUES[0])),
        ("present", audit.value_digest(VALUES[1])),
        ("present", audit.value_digest(VALUES[2])),
        ("cleanup", audit.value_digest(VALUES[0])),
    ]
    assert {(row.actor, row.via, row.name, row.client_address) for row in rows} == {
        ("machine", "acme-dns", new.account.fulldomain, "198.51.100.30")
    }
    assert PublishedRecord.objects.filter(via="acme-dns").count() == 2


@pytest.mark.usefixtures("acmedns_zone")
def test_an_acmedns_update_after_the_grant_was_revoked_is_recorded_as_refused(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = create_account(
        "machine", "www.example.com", delegated=True, allowfrom=[], config=AcmeDnsConfig(
            zone=ACMEDNS_ZONE)
    )  # fmt: skip
    revoke("machine", ["www.example.com", "example.com"], [])
    assert acmedns_update(new, VALUES[0], "198.51.100.31") == 401
    (row,) = [row for row in records() if row.result == AuditResult.REFUSED]
    assert (row.actor, row.via, row.name) == ("machine", "acme-dns", new.account.fulldomain)


@pytest.mark.usefixtures("acmedns_zone")
def test_a_wrong_acmedns_key_counts_one_refused_authentication(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = create_account(
        "machine", "www.example.com", delegated=True, allowfrom=[], config=AcmeDnsConfig(
            zone=ACMEDNS_ZONE)
    )  # fmt: skip
    before = sample("lego_provider_authentication_failures_total", outcome="refused")
    wrong = NewAccount(**{**vars(new), "key": "x" * 43})
    assert acmedns_update(wrong, VALUES[0], "198.51.100.32") == 401
    after = sample("lego_provider_authentication_failures_total", outcome="refused")
    assert after == before + 1
    assert records() == []
