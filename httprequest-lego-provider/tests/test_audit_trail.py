"""The audit trail of grants, accounts and credentials (real PostgreSQL, the service's own paths).

Rows come from the models' signals, so each path (management commands, admin REST API, Django
admin) is exercised as an operator uses it, and the row is read back from the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import uuid
from datetime import timedelta

import pytest
from api import audit
from api.models import AcmeDnsAccount, AuditAction, AuditEvent, AuditResult
from api.operations import OperationsSettings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.audit_helpers import audit_context  # noqa: F401 - a fixture
from tests.conftest import Account, make_account

pytestmark = pytest.mark.django_db

VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"


def rows(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def carols(action: AuditAction) -> list[AuditEvent]:
    return [row for row in rows(action) if row.subject == "carol"]


def staff_client(account: Account, address: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=account.basic_auth())
    return client


@pytest.mark.usefixtures("audit_context")
def test_a_grant_through_the_admin_api_names_the_staff_user_and_the_client_address(
    admin_account: Account,
) -> None:
    target = make_account("alice")
    client = staff_client(admin_account, "192.0.2.7")
    domain = client.post("/api/v1/domains/", {"fqdn": "example.com"}, format="json").json()
    created = client.post(
        "/api/v1/domain-user-permissions/",
        {"domain": domain["id"], "user": target.user.pk, "access_level": "subdomain"},
        format="json",
    )
    assert created.status_code == 201
    (grant,) = rows(AuditAction.GRANT)
    assert (grant.actor, grant.via, grant.client_address) == ("admin", "admin-api", "192.0.2.7")
    assert (grant.name, grant.subject, grant.reason) == ("example.com", "alice", "subdomain")
    assert grant.result == AuditResult.OK

    assert client.delete(f"/api/v1/domain-user-permissions/{created.json()['id']}/").status_code
    (revoke,) = rows(AuditAction.REVOKE)
    assert (revoke.actor, revoke.name, revoke.subject) == ("admin", "example.com", "alice")


def test_the_grant_commands_are_audited_with_the_command_as_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_account("bob")
    monkeypatch.setattr(sys, "argv", ["manage.py", "allow_domains", "bob"])
    call_command("allow_domains", "bob", "--domains", "www.example.com")
    monkeypatch.setattr(sys, "argv", ["manage.py", "revoke_domains", "bob"])
    call_command("revoke_domains", "bob", "--domains", "www.example.com")
    (grant,) = rows(AuditAction.GRANT)
    (revoke,) = rows(AuditAction.REVOKE)
    assert (grant.actor, grant.via, grant.name, grant.reason) == (
        "command:allow_domains",
        "command",
        "www.example.com",
        "domain",
    )
    assert (revoke.actor, revoke.subject) == ("command:revoke_domains", "bob")


@pytest.mark.usefixtures("audit_context")
def test_account_creation_password_change_and_deactivation_are_audited_without_the_password(
    admin_account: Account,
) -> None:
    client = staff_client(admin_account, "198.51.100.4")
    password = "a-long-human-password-1"
    created = client.post(
        "/api/v1/users/", {"username": "carol", "password": password}, format="json"
    )
    assert created.status_code == 201
    url = f"/api/v1/users/{created.json()['id']}/"
    new_password = "another-long-password-2"
    assert client.patch(url, {"password": new_password}, format="json").status_code == 200
    assert client.patch(url, {"is_active": False}, format="json").status_code == 200

    (create,) = carols(AuditAction.ACCOUNT_CREATE)
    (credential,) = carols(AuditAction.CREDENTIAL_CHANGE)
    (change,) = carols(AuditAction.ACCOUNT_CHANGE)
    assert (create.actor, create.client_address) == ("admin", "198.51.100.4")
    assert (credential.subject, credential.reason) == ("carol", "password")
    assert change.reason == "is_active; now inactive"
    stored = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert password not in stored
    assert new_password not in stored

    client.delete(url)
    (delete,) = carols(AuditAction.ACCOUNT_DELETE)
    assert (delete.name, delete.actor) == ("carol", "admin")


def test_a_login_that_only_updates_last_login_writes_no_audit_row(machine: Account) -> None:
    before = AuditEvent.objects.count()
    machine.user.last_login = timezone.now()
    machine.user.save(update_fields=["last_login"])
    assert AuditEvent.objects.count() == before


def test_acmedns_account_creation_key_change_and_deletion_are_audited(machine: Account) -> None:
    account = AcmeDnsAccount.objects.create(
        username=uuid.uuid4(),
        key_hash="first-hash",
        subdomain=uuid.uuid4(),
        user=machine.user,
        domain="www.example.com",
        fulldomain="_acme-challenge.www.example.com",
    )
    account.key_hash = "second-hash"
    account.save()
    account.delete()
    (create,) = rows(AuditAction.ACMEDNS_CREATE)
    (key,) = [r for r in rows(AuditAction.CREDENTIAL_CHANGE) if r.name == account.fulldomain]
    (delete,) = rows(AuditAction.ACMEDNS_DELETE)
    assert (create.name, create.subject, create.reason) == (
        "_acme-challenge.www.example.com",
        "machine",
        "for www.example.com",
    )
    assert key.reason == "api key"
    assert delete.subject == "machine"


def test_deleting_a_user_audits_the_revocation_of_each_of_its_grants() -> None:
    make_account("dave", domains="a.example.com", subdomains="b.example.com")
    User.objects.get(username="dave").delete()
    revoked = sorted((row.name, row.subject) for row in rows(AuditAction.REVOKE))
    assert revoked == [("a.example.com", "dave"), ("b.example.com", "dave")]


def test_a_row_and_its_json_log_line_carry_a_digest_prefix_never_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="audit"),
        audit.acting(actor="eve", via="httpreq", address="203.0.113.9"),
    ):
        event = audit.record(
            AuditAction.PRESENT,
            "_acme-challenge.www.example.com",
            value=VALUE,
            result=AuditResult.REFUSED,
            reason="user eve may not\nmanage it",
        )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.value_digest == hashlib.sha256(VALUE.encode()).hexdigest()[:16]
    assert stored.reason == "user eve may not manage it"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "audit"]
    logged = json.loads(line)
    assert logged == audit.as_log_record(stored)
    assert logged["actor"] == "eve"
    assert logged["client_address"] == "203.0.113.9"
    assert VALUE not in line
    assert VALUE not in json.dumps(list(AuditEvent.objects.values()), default=str)


def test_the_outer_acting_context_wins_over_an_inner_one() -> None:
    with audit.acting(actor="owner", via="acme-dns"), audit.acting(actor="other", via="httpreq"):
        assert (audit.current_actor(), audit.current_via()) == ("owner", "acme-dns")
    assert audit.current_actor() == "system"


def test_prune_removes_only_rows_older_than_the_retention_period() -> None:
    now = timezone.now()
    for days in (1, 89, 91, 400):
        event = audit.record(AuditAction.GRANT, f"d{days}.example.com", result=AuditResult.OK)
        AuditEvent.objects.filter(pk=event.pk).update(at=now - timedelta(days=days))
    assert audit.prune(90, now=now, dry_run=True) == 2
    assert AuditEvent.objects.filter(name__startswith="d").count() == 4
    call_command("prune_audit", "--days", "90")
    left = set(AuditEvent.objects.filter(name__startswith="d").values_list("name", flat=True))
    assert left == {"d1.example.com", "d89.example.com"}


def test_the_audit_trail_is_listed_and_filtered_in_the_django_admin_but_read_only(
    admin_account: Account,
) -> None:
    audit.record(AuditAction.GRANT, "listed.example.com", result=AuditResult.OK)
    audit.record(AuditAction.REVOKE, "other.example.com", result=AuditResult.OK)
    browser = Client()
    browser.force_login(admin_account.user)
    page = browser.get("/admin/api/auditevent/", {"action__exact": "grant"})
    assert page.status_code == 200
    assert b"listed.example.com" in page.content
    assert b"other.example.com" not in page.content
    event = AuditEvent.objects.get(name="listed.example.com")
    assert browser.get("/admin/api/auditevent/add/").status_code == 403
    assert browser.get(f"/admin/api/auditevent/{event.pk}/delete/").status_code == 403
    change = browser.post(f"/admin/api/auditevent/{event.pk}/change/", {"actor": "forged"})
    assert change.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).actor != "forged"


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("DJANGO_AUDIT_RETENTION_DAYS", "0"),
        ("DJANGO_AUDIT_RETENTION_DAYS", "ninety"),
        ("DJANGO_JANITOR_MAX_AGE", "10"),
        ("DJANGO_METRICS_PORT", "70000"),
    ],
)
def test_bad_operations_settings_stop_the_start_naming_the_variable(
    variable: str, raw: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=variable):
        OperationsSettings.from_env({variable: raw})


def test_operations_settings_have_the_documented_defaults() -> None:
    config = OperationsSettings.from_env({})
    assert (config.metrics_port, config.audit_retention_days, config.janitor_max_age) == (
        9103,
        90,
        3 * 3600,
    )
