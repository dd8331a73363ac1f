"""acme-dns accounts in the Django admin: created with the account file shown once, then managed.

Against the real PostgreSQL, the service's middleware and the in-memory backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from api.acmedns.accounts import create_account
from api.acmedns.config import AcmeDnsConfig, set_acmedns_config
from api.grants import allow
from api.hashers import GeneratedTokenHasher, is_generated_password_hash
from api.models import AcmeDnsAccount, AuditEvent
from django.contrib.auth.models import Permission
from dns_backends.memory import MemoryBackend
from rest_framework.test import APIClient

from tests.admin_helpers import logged_in, make_staff, shown
from tests.conftest import Account

pytestmark = pytest.mark.django_db

ADD = "/admin/api/acmednsaccount/add/"
ZONE = "acme-dns.example.com"
SERVER_URL = "https://acme.example.com"
VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
DIRECT_NAME = "_acme-challenge.www.example.com"


@pytest.fixture(autouse=True)
def acmedns_zone() -> Iterator[None]:
    set_acmedns_config(AcmeDnsConfig(zone=ZONE, server_url=SERVER_URL))
    yield
    set_acmedns_config(None)


@pytest.fixture
def operator(db: None) -> Account:
    return make_staff()


def form(user: Account, domain: str = "www.example.com", **fields: str) -> dict[str, Any]:
    return {"user": user.user.pk, "domain": domain, "allowfrom": "", **fields}


def update(entry: dict[str, str], value: str = VALUE) -> int:
    """POST /update as lego's acme-dns client does, with the account file's credentials."""
    response = APIClient().post(
        "/update",
        data=json.dumps({"subdomain": entry["subdomain"], "txt": value}),
        content_type="application/json",
        HTTP_X_API_USER=entry["username"],
        HTTP_X_API_KEY=entry["password"],
    )
    status: int = response.status_code
    return status


def test_staff_create_an_account_whose_account_file_is_shown_once(
    operator: Account, machine: Account, memory_backend: MemoryBackend
) -> None:
    client = logged_in(operator)
    empty = client.get(ADD, {"user": machine.user.pk})
    assert empty.status_code == 200
    assert f'<option value="{machine.user.pk}" selected>'.encode() in empty.content
    page = client.post(ADD, form(machine, allowfrom="127.0.0.1/8"))
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    account_file = json.loads(shown(page, "shown-account-file"))
    entry = account_file["www.example.com"]  # the command's format: {"<name>": {...}}
    assert set(entry) == {"fulldomain", "subdomain", "username", "password", "server_url"}
    assert (entry["fulldomain"], entry["server_url"]) == (DIRECT_NAME, SERVER_URL)
    account = AcmeDnsAccount.objects.get()
    assert (account.user, account.domain, account.delegated) == (
        machine.user,
        "www.example.com",
        False,
    )
    assert account.allowfrom == ["127.0.0.0/8"]
    assert is_generated_password_hash(account.key_hash)
    assert GeneratedTokenHasher().verify(entry["password"], account.key_hash)
    assert update(entry) == 200
    assert memory_backend.values(DIRECT_NAME) == {VALUE}
    for later in (f"/admin/api/acmednsaccount/{account.pk}/change/", "/admin/api/acmednsaccount/"):
        again = client.get(later)
        assert again.status_code == 200
        assert entry["password"].encode() not in again.content


def test_a_delegated_account_publishes_under_the_delegation_zone(
    operator: Account, machine: Account, memory_backend: MemoryBackend
) -> None:
    client = logged_in(operator)
    assert f"Publish at &lt;uuid&gt;.{ZONE}".encode() in client.get(ADD).content
    page = client.post(ADD, form(machine, delegated="on"))
    entry = json.loads(shown(page, "shown-account-file"))["www.example.com"]
    assert entry["fulldomain"] == f"{entry['subdomain']}.{ZONE}"
    assert f"CNAME {entry['fulldomain']}.".encode() in page.content


def test_without_a_delegation_zone_the_delegated_box_is_off_and_accounts_are_direct(
    operator: Account, machine: Account
) -> None:
    set_acmedns_config(AcmeDnsConfig())
    client = logged_in(operator)
    assert b"(DJANGO_ACMEDNS_ZONE), which is not set" in client.get(ADD).content
    page = client.post(ADD, form(machine, delegated="on"))
    entry = json.loads(shown(page, "shown-account-file"))["www.example.com"]
    assert entry["fulldomain"] == DIRECT_NAME
    assert "server_url" not in entry


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"domain": "other.example.net"}, b"holds no grant covering other.example.net"),
        ({"domain": "bad name"}, b"domain "),
        ({"allowfrom": "not-a-network"}, b"allowfrom "),
    ],
)
def test_a_request_create_account_refuses_is_shown_on_the_form_and_creates_nothing(
    operator: Account, machine: Account, fields: dict[str, str], message: bytes
) -> None:
    page = logged_in(operator).post(ADD, form(machine) | fields)
    assert page.status_code == 200
    assert message in page.content
    assert b"shown-account-file" not in page.content
    assert not AcmeDnsAccount.objects.exists()


def test_staff_cannot_create_an_account_for_a_staff_account_but_a_superuser_can(
    operator: Account, admin_account: Account
) -> None:
    other = make_staff("other-operator")
    allow("other-operator", ["www.example.com"], [])
    refused = logged_in(operator).post(ADD, form(other))
    assert b"Select a valid choice" in refused.content
    assert not AcmeDnsAccount.objects.exists()
    accepted = logged_in(admin_account).post(ADD, form(other))
    assert json.loads(shown(accepted, "shown-account-file"))["www.example.com"]


def test_staff_without_the_permission_to_add_accounts_get_403(
    operator: Account, machine: Account
) -> None:
    operator.user.user_permissions.set(Permission.objects.filter(codename="view_acmednsaccount"))
    client = logged_in(operator)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, form(machine)).status_code == 403
    assert not AcmeDnsAccount.objects.exists()


def test_staff_cannot_change_or_delete_the_account_of_a_superuser(
    operator: Account, admin_account: Account
) -> None:
    allow("admin", ["www.example.com"], [])
    new = create_account(
        "admin", "www.example.com", delegated=False, allowfrom=[], config=AcmeDnsConfig()
    )
    client = logged_in(operator)
    change = f"/admin/api/acmednsaccount/{new.account.pk}/change/"
    assert client.post(change, {"allowfrom": "192.0.2.0/24"}).status_code == 403
    delete = f"/admin/api/acmednsaccount/{new.account.pk}/delete/"
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AcmeDnsAccount.objects.get().allowfrom == []


def test_allowfrom_is_changed_in_the_admin_and_a_bad_network_is_refused(
    operator: Account, machine: Account
) -> None:
    new = create_account(
        "machine", "www.example.com", delegated=False, allowfrom=[], config=AcmeDnsConfig()
    )
    client = logged_in(operator)
    change = f"/admin/api/acmednsaccount/{new.account.pk}/change/"
    refused = client.post(change, {"allowfrom": "nonsense"})
    assert refused.status_code == 200
    assert b"allowfrom " in refused.content
    saved = client.post(change, {"allowfrom": "192.0.2.1/24\n2001:db8::/32"})
    assert saved.status_code == 302
    assert AcmeDnsAccount.objects.get().allowfrom == ["192.0.2.0/24", "2001:db8::/32"]
    assert b"192.0.2.0/24, 2001:db8::/32" in client.get("/admin/api/acmednsaccount/").content


def test_deleting_an_account_in_the_admin_withdraws_its_values_and_stops_its_key(
    operator: Account, machine: Account, memory_backend: MemoryBackend
) -> None:
    client = logged_in(operator)
    entry = json.loads(shown(client.post(ADD, form(machine)), "shown-account-file"))
    entry = entry["www.example.com"]
    assert update(entry) == 200
    pk = AcmeDnsAccount.objects.get().pk
    response = client.post(f"/admin/api/acmednsaccount/{pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert memory_backend.values(DIRECT_NAME) == set()
    assert update(entry) == 401


def test_creating_an_account_in_the_admin_is_audited_as_the_staff_member(
    operator: Account, machine: Account
) -> None:
    logged_in(operator).post(ADD, form(machine))
    event = AuditEvent.objects.get(action="acmedns-create")
    assert (event.actor, event.via, event.name, event.subject) == (
        "operator",
        "admin",
        DIRECT_NAME,
        "machine",
    )
