"""Creating and managing acme-dns accounts: ``/register``, the command, the admin API, settings.

Against the real PostgreSQL and the in-memory backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from api.acmedns.accounts import delete_account
from api.acmedns.config import AcmeDnsConfig, set_acmedns_config
from api.grants import allow, revoke
from api.hashers import is_generated_password_hash
from api.models import AccessLevel, AcmeDnsAccount
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings
from dns_backends import Deadline, DnsBackendUnavailableError
from dns_backends.memory import MemoryBackend
from httprequest_lego_provider.environment import AcmeDnsSettings, ProviderEnvironment
from rest_framework.test import APIClient

from tests.conftest import Account, make_account

pytestmark = pytest.mark.django_db

ZONE = "acme-dns.example.com"
VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
ACCOUNT_FIELDS = {"fulldomain", "subdomain", "username", "password"}
PROJECT_DIR = Path(__file__).resolve().parents[1] / "httprequest_lego_provider"


@pytest.fixture(autouse=True)
def acmedns_zone() -> Iterator[None]:
    set_acmedns_config(AcmeDnsConfig(zone=ZONE, server_url="https://acme.example.com"))
    yield
    set_acmedns_config(None)


def register(client: APIClient, body: object) -> tuple[int, Any]:
    response = client.post("/register", data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def update(account: dict[str, str], value: str = VALUE) -> int:
    response = APIClient().post(
        "/update",
        data=json.dumps({"subdomain": account["subdomain"], "txt": value}),
        content_type="application/json",
        HTTP_X_API_USER=account["username"],
        HTTP_X_API_KEY=account["password"],
    )
    status: int = response.status_code
    return status


# /register


def test_register_by_staff_answers_201_with_an_account_that_updates(
    admin_account: Account, machine: Account, memory_backend: MemoryBackend
) -> None:
    status, body = register(
        admin_account.client(),
        {"user": "machine", "domain": "www.example.com", "allowfrom": ["127.0.0.1/8"]},
    )
    assert status == 201
    assert body["fulldomain"] == "_acme-challenge.www.example.com"
    assert body["allowfrom"] == ["127.0.0.0/8"]
    assert (body["user"], body["domain"], body["delegated"]) == (
        "machine",
        "www.example.com",
        False,
    )
    assert update(body) == 200
    assert memory_backend.values("_acme-challenge.www.example.com") == {VALUE}


def test_register_delegated_answers_a_fulldomain_under_the_zone(
    admin_account: Account, machine: Account, memory_backend: MemoryBackend
) -> None:
    status, body = register(
        admin_account.client(), {"user": "machine", "domain": "www.example.com", "delegated": True}
    )
    assert status == 201
    assert body["fulldomain"] == f"{body['subdomain']}.{ZONE}"
    assert update(body) == 200
    assert memory_backend.values(body["fulldomain"]) == {VALUE}


def test_register_stores_the_key_hashed_with_the_fast_hasher(
    admin_account: Account, machine: Account
) -> None:
    _, body = register(admin_account.client(), {"user": "machine", "domain": "example.com"})
    stored = AcmeDnsAccount.objects.get(username=body["username"])
    assert is_generated_password_hash(stored.key_hash)
    assert body["password"] not in stored.key_hash


def test_anonymous_register_is_refused_with_401(machine: Account) -> None:
    """acme-dns lets anyone register; this service does not."""
    status, body = register(APIClient(), {"user": "machine", "domain": "www.example.com"})
    assert (status, body) == (401, {"error": "forbidden"})
    assert not AcmeDnsAccount.objects.exists()


def test_register_by_a_non_staff_user_is_refused_with_403(machine: Account) -> None:
    status, body = register(machine.client(), {"user": "machine", "domain": "www.example.com"})
    assert status == 403
    assert body["error"] == "forbidden"
    assert not AcmeDnsAccount.objects.exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("[]", "malformed_json_payload"),
        ("{", "malformed_json_payload"),
        ('{"user": "machine", "domain": "www.example.com", "allowfrom": ["1.2.3.4"]}',
         "invalid_allowfrom_cidr"),
        ('{"user": "machine", "domain": "www.example.com", "allowfrom": ["x/8"]}',
         "invalid_allowfrom_cidr"),
        ('{"user": "machine", "domain": "www.example.com", "allowfrom": "10.0.0.0/8"}',
         "invalid_allowfrom_cidr"),
        ('{"domain": "www.example.com"}', "bad_account_request"),
        ('{"user": "nobody", "domain": "www.example.com"}', "bad_account_request"),
        ('{"user": "machine"}', "bad_account_request"),
        ('{"user": "machine", "domain": "bad name"}', "bad_account_request"),
        ('{"user": "machine", "domain": "other.example.com"}', "bad_account_request"),
        ('{"user": "machine", "domain": "www.example.com", "delegated": "yes"}',
         "bad_account_request"),
    ],
)  # fmt: skip
def test_bad_register_requests_answer_400_with_acme_dns_error_codes(
    admin_account: Account, machine: Account, body: str, error: str
) -> None:
    response = admin_account.client().post("/register", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert not AcmeDnsAccount.objects.exists()


def test_register_for_a_name_without_grant_says_so(
    admin_account: Account, machine: Account
) -> None:
    _, body = register(admin_account.client(), {"user": "machine", "domain": "other.example.com"})
    assert body["detail"] == "user machine holds no grant covering other.example.com"


@pytest.mark.parametrize(
    "username", ["<script>alert(1)</script>", "nobody", "x" * 150, "<b>", "machine\n"]
)
def test_register_for_an_unknown_user_never_repeats_the_username(
    admin_account: Account, machine: Account, username: str
) -> None:
    """The answer says what is wrong without echoing input into a page or a log viewer."""
    status, body = register(admin_account.client(), {"user": username, "domain": "example.com"})
    assert (status, body) == (
        400,
        {"error": "bad_account_request", "detail": "user: no user has that username"},
    )


def test_delegated_register_without_a_zone_names_the_variable(
    admin_account: Account, machine: Account
) -> None:
    set_acmedns_config(AcmeDnsConfig())
    status, body = register(
        admin_account.client(), {"user": "machine", "domain": "www.example.com", "delegated": True}
    )
    assert status == 400
    assert "DJANGO_ACMEDNS_ZONE" in body["detail"]


# The management command


def run_command(*args: str) -> dict[str, dict[str, str]]:
    out = StringIO()
    call_command("create_acmedns_account", *args, stdout=out)
    parsed: dict[str, dict[str, str]] = json.loads(out.getvalue())
    return parsed


def test_command_prints_the_account_file_lego_and_cert_manager_read(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    storage = run_command("machine", "www.example.com")
    assert list(storage) == ["www.example.com"]
    account = storage["www.example.com"]
    assert set(account) == ACCOUNT_FIELDS | {"server_url"}
    assert account["server_url"] == "https://acme.example.com"
    assert account["fulldomain"] == "_acme-challenge.www.example.com"
    assert update(account) == 200


def test_command_creates_delegated_accounts_with_networks(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    account = run_command(
        "machine", "www.example.com", "--delegated", "--allowfrom", "10.0.0.0/8, 127.0.0.1/32",
        "--server-url", "http://127.0.0.1:8080",
    )["www.example.com"]  # fmt: skip
    assert account["fulldomain"].endswith("." + ZONE)
    assert account["server_url"] == "http://127.0.0.1:8080"
    stored = AcmeDnsAccount.objects.get(username=account["username"])
    assert stored.allowfrom == ["10.0.0.0/8", "127.0.0.1/32"]
    assert update(account) == 200


def test_command_without_a_server_url_leaves_it_out(machine: Account) -> None:
    set_acmedns_config(AcmeDnsConfig(zone=ZONE))
    assert set(run_command("machine", "example.com")["example.com"]) == ACCOUNT_FIELDS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "www.example.com"], "^user: no user has that username$"),
        (["machine", "other.example.com"], "holds no grant covering other.example.com"),
        (["machine", "www.example.com", "--allowfrom", "10.0.0.1"], "networks like"),
    ],
)
def test_command_fails_with_a_message(machine: Account, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run_command(*args)
    assert not AcmeDnsAccount.objects.exists()


# The admin API

ROUTE = "/api/v1/acmedns-accounts/"


def test_admin_api_lists_and_shows_accounts_without_any_key(
    admin_account: Account, machine: Account
) -> None:
    account = run_command("machine", "www.example.com")["www.example.com"]
    client = admin_account.client()
    listed = client.get(ROUTE).json()
    assert [a["username"] for a in listed] == [account["username"]]
    shown = client.get(f"{ROUTE}{listed[0]['id']}/").json()
    assert shown["user"] == "machine"
    assert shown["fulldomain"] == account["fulldomain"]
    assert account["password"] not in json.dumps(listed) + json.dumps(shown)
    assert "key_hash" not in shown
    assert client.get(ROUTE, {"user": "nobody"}).json() == []


def test_admin_api_changes_allowfrom_and_the_next_update_obeys_it(
    admin_account: Account, machine: Account, memory_backend: MemoryBackend
) -> None:
    """acme-dns cannot change an account's networks after registration; staff can here."""
    account = run_command("machine", "www.example.com")["www.example.com"]
    pk = AcmeDnsAccount.objects.get().pk
    client = admin_account.client()
    response = client.patch(f"{ROUTE}{pk}/", {"allowfrom": ["192.0.2.0/24"]}, format="json")
    assert response.status_code == 200
    assert response.json()["allowfrom"] == ["192.0.2.0/24"]
    assert update(account) == 401  # the test client comes from 127.0.0.1
    client.patch(f"{ROUTE}{pk}/", {"allowfrom": []}, format="json")
    assert update(account) == 200


def test_admin_api_refuses_a_bad_network_and_changes_nothing_else(
    admin_account: Account, machine: Account
) -> None:
    run_command("machine", "www.example.com")
    stored = AcmeDnsAccount.objects.get()
    client = admin_account.client()
    response = client.patch(f"{ROUTE}{stored.pk}/", {"allowfrom": ["10.0.0.1"]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("allowfrom: ")
    client.patch(
        f"{ROUTE}{stored.pk}/", {"domain": "x.example.com", "delegated": True}, format="json"
    )
    stored.refresh_from_db()
    assert (stored.domain, stored.delegated, stored.allowfrom) == ("www.example.com", False, [])


def test_admin_api_delete_withdraws_the_values_and_stops_the_key(
    admin_account: Account, machine: Account, memory_backend: MemoryBackend
) -> None:
    account = run_command("machine", "www.example.com", "--delegated")["www.example.com"]
    assert update(account) == 200
    pk = AcmeDnsAccount.objects.get().pk
    assert admin_account.client().delete(f"{ROUTE}{pk}/").status_code == 204
    assert memory_backend.values(account["fulldomain"]) == set()
    assert update(account) == 401


def delete_with_the_admin_api(admin: Account, user: User) -> int:
    status: int = admin.client().delete(f"/api/v1/users/{user.pk}/").status_code
    return status


def delete_with_the_django_admin(admin: Account, user: User) -> int:
    client = APIClient()
    client.force_login(admin.user)
    response = client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    status: int = response.status_code
    return status


def delete_with_a_django_admin_action(admin: Account, user: User) -> int:
    client = APIClient()
    client.force_login(admin.user)
    response = client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"},
    )
    status: int = response.status_code
    return status


def delete_with_the_orm(admin: Account, user: User) -> int:
    user.delete()
    return 204


@pytest.mark.parametrize(
    ("delete", "status"),
    [
        (delete_with_the_admin_api, 204),
        (delete_with_the_django_admin, 302),
        (delete_with_a_django_admin_action, 302),
        (delete_with_the_orm, 204),
    ],
)
def test_deleting_a_user_withdraws_the_values_of_each_of_their_accounts(
    admin_account: Account,
    machine: Account,
    memory_backend: MemoryBackend,
    delete: Any,
    status: int,
) -> None:
    """The cascade to the accounts withdraws first: no TXT record outlives its account."""
    direct = run_command("machine", "www.example.com")["www.example.com"]
    delegated = run_command("machine", "example.com", "--delegated")["example.com"]
    second = "zE6Fq6AtvJX6Lp8Z8VHbGv6ZpvCdpX_TUfXr6nS8pV0"
    for account in (direct, delegated):
        assert update(account) == 200
        assert update(account, second) == 200
        assert memory_backend.values(account["fulldomain"]) == {VALUE, second}
    assert delete(admin_account, machine.user) == status
    assert not User.objects.filter(username="machine").exists()
    assert not AcmeDnsAccount.objects.exists()
    assert memory_backend.values(direct["fulldomain"]) == set()
    assert memory_backend.values(delegated["fulldomain"]) == set()


@pytest.mark.django_db(transaction=True)  # the deletion's own transaction rolls back, as served
def test_a_user_whose_values_cannot_be_withdrawn_is_not_deleted(
    admin_account: Account,
    machine: Account,
    memory_backend: MemoryBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backend's 503, and nothing lost: the user, the account and its record all stay."""
    account = run_command("machine", "www.example.com")["www.example.com"]
    assert update(account) == 200

    def unavailable(fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise DnsBackendUnavailableError()

    monkeypatch.setattr(memory_backend, "cleanup", unavailable)
    response = admin_account.client().delete(f"/api/v1/users/{machine.user.pk}/")
    assert response.status_code == 503
    assert User.objects.filter(username="machine").exists()
    assert AcmeDnsAccount.objects.get().txt_values == [VALUE]
    assert memory_backend.values(account["fulldomain"]) == {VALUE}


@pytest.mark.parametrize("style", [(), ("--delegated",)], ids=["direct", "delegated"])
def test_revoking_the_grant_withdraws_the_values_once_the_revocation_commits(
    machine: Account,
    memory_backend: MemoryBackend,
    django_capture_on_commit_callbacks: Any,
    style: tuple[str, ...],
) -> None:
    """Updates are refused from then on, so nothing else would ever withdraw them."""
    account = run_command("machine", "www.example.com", *style)["www.example.com"]
    assert update(account) == 200
    with django_capture_on_commit_callbacks(execute=True):
        revoke("machine", ["www.example.com"], [])
    assert memory_backend.values(account["fulldomain"]) == set()
    assert AcmeDnsAccount.objects.get().txt_values == []
    assert update(account) == 401


def test_narrowing_a_grant_withdraws_the_values_it_no_longer_covers(
    machine: Account, memory_backend: MemoryBackend, django_capture_on_commit_callbacks: Any
) -> None:
    """A grant changed in place (the Django admin, the admin API), not deleted."""
    account = run_command("machine", "www.example.co.uk")["www.example.co.uk"]
    assert update(account) == 200
    grant = machine.user.domain_permissions.get(domain__fqdn="example.co.uk")
    grant.access_level = AccessLevel.DOMAIN  # example.co.uk itself only, not www below it
    with django_capture_on_commit_callbacks(execute=True):
        grant.save()
    assert memory_backend.values(account["fulldomain"]) == set()
    assert update(account) == 401


def test_revoking_one_grant_keeps_the_values_another_grant_still_covers(
    machine: Account, memory_backend: MemoryBackend, django_capture_on_commit_callbacks: Any
) -> None:
    account = run_command("machine", "www.example.com")["www.example.com"]
    assert update(account) == 200
    allow("machine", [], ["example.com"])  # also covers www.example.com
    with django_capture_on_commit_callbacks(execute=True):
        revoke("machine", ["www.example.com"], [])
    assert memory_backend.values(account["fulldomain"]) == {VALUE}
    assert AcmeDnsAccount.objects.get().txt_values == [VALUE]


def test_a_revocation_stands_when_the_values_cannot_be_withdrawn(
    machine: Account,
    memory_backend: MemoryBackend,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The values stay recorded on the account; deleting the account withdraws them later."""
    account = run_command("machine", "www.example.com")["www.example.com"]
    assert update(account) == 200
    real_cleanup = memory_backend.cleanup

    def unavailable(fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise DnsBackendUnavailableError()

    monkeypatch.setattr(memory_backend, "cleanup", unavailable)
    with django_capture_on_commit_callbacks(execute=True):
        assert revoke("machine", ["www.example.com"], [])
    assert not machine.user.domain_permissions.filter(domain__fqdn="www.example.com").exists()
    stored = AcmeDnsAccount.objects.get()
    assert stored.txt_values == [VALUE]
    monkeypatch.setattr(memory_backend, "cleanup", real_cleanup)
    delete_account(stored)
    assert memory_backend.values(account["fulldomain"]) == set()


def test_admin_api_has_no_create_route(admin_account: Account) -> None:
    """Accounts are created where the key can be shown once: /register or the command."""
    assert admin_account.client().post(ROUTE, {}, format="json").status_code == 405


def test_admin_api_refuses_non_staff_and_anonymous_users(machine: Account) -> None:
    assert machine.client().get(ROUTE).status_code == 403
    assert APIClient().get(ROUTE).status_code == 401


# Settings


def test_settings_are_read_from_the_environment() -> None:
    config = AcmeDnsConfig.from_env(
        {
            "DJANGO_ACMEDNS_ZONE": "Auth.Example.NET.",
            "DJANGO_ACMEDNS_SERVER_URL": "https://auth.example.net",
        }
    )
    assert config == AcmeDnsConfig(zone="auth.example.net", server_url="https://auth.example.net")
    assert AcmeDnsConfig.from_env({}) == AcmeDnsConfig()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DJANGO_ACMEDNS_ZONE", "bad zone"),
        ("DJANGO_ACMEDNS_SERVER_URL", "ftp://x"),
    ],
)
def test_bad_settings_fail_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        AcmeDnsConfig.from_env({name: value})


BAD_ACMEDNS_SETTINGS = [
    ("DJANGO_ACMEDNS_ZONE", "bad zone"),
    ("DJANGO_ACMEDNS_ZONE", "a..example.com"),
    ("DJANGO_ACMEDNS_SERVER_URL", "ftp://x"),
    ("DJANGO_ACMEDNS_SERVER_URL", "https://"),
    ("DJANGO_ACMEDNS_SERVER_URL", "https://acme.example.com/<script>"),
]


@pytest.mark.parametrize(("name", "value"), BAD_ACMEDNS_SETTINGS)
def test_bad_acmedns_settings_are_refused_with_the_other_settings(name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"^{name} "):
        ProviderEnvironment.from_env({"DJANGO_SECRET_KEY": "k" * 50, name: value})


def test_acmedns_settings_are_part_of_the_provider_environment() -> None:
    env = ProviderEnvironment.from_env(
        {
            "DJANGO_SECRET_KEY": "k" * 50,
            "DJANGO_ACMEDNS_ZONE": "Auth.Example.NET.",
            "DJANGO_ACMEDNS_SERVER_URL": "https://auth.example.net:8443",
        }
    )
    assert env.acmedns == AcmeDnsSettings("auth.example.net", "https://auth.example.net:8443")
    assert ProviderEnvironment.from_env({"DJANGO_SECRET_KEY": "k" * 50}).acmedns == (
        AcmeDnsSettings(None, None)
    )


@pytest.mark.parametrize(("name", "value"), BAD_ACMEDNS_SETTINGS[::2])
def test_a_bad_acmedns_setting_stops_the_start_instead_of_failing_each_update(
    name: str, value: str
) -> None:
    """Django itself, started as gunicorn starts it, refuses the settings, naming the variable."""
    environ = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "httprequest_lego_provider.settings",
        "DJANGO_SECRET_KEY": "k" * 50,
        "DJANGO_DNS_BACKEND": "memory",
        "DJANGO_MEMORY_ZONES": "example.com",
        "PYTHONPATH": str(PROJECT_DIR),
        name: value,
    }
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environ, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert started.returncode != 0
    assert f"ImproperlyConfigured: {name} " in started.stderr


def test_the_endpoints_use_the_django_settings(machine: Account) -> None:
    """Read once at start into ``settings.ACMEDNS``; the endpoints never read the variables."""
    set_acmedns_config(None)
    with override_settings(ACMEDNS=AcmeDnsSettings("other.example.org", "https://o.example")):
        storage = run_command("machine", "www.example.com", "--delegated")["www.example.com"]
    assert storage["fulldomain"].endswith(".other.example.org")
    assert storage["server_url"] == "https://o.example"


def test_a_user_can_hold_accounts_for_several_names(machine: Account) -> None:
    make_account("other", domains="example.com")
    run_command("machine", "www.example.com")
    run_command("machine", "example.com")
    run_command("other", "example.com")
    assert AcmeDnsAccount.objects.filter(user=machine.user).count() == 2


# Staff and privileged accounts


@pytest.fixture
def staff(db: None) -> Account:
    """A staff member who is not a superuser."""
    account = make_account("staffer")
    account.user.is_staff = True
    account.user.save()
    return account


def test_staff_register_for_machine_users_but_not_for_a_superuser(
    staff: Account, admin_account: Account, machine: Account
) -> None:
    """As for passwords and flags: a staff member cannot act as a superuser."""
    make_account("root2", domains="www.example.com")
    User.objects.filter(username="root2").update(is_staff=True, is_superuser=True)
    client = staff.client()
    assert register(client, {"user": "machine", "domain": "www.example.com"})[0] == 201
    status, body = register(client, {"user": "root2", "domain": "www.example.com"})
    assert (status, body["error"]) == (400, "bad_account_request")
    assert body["detail"] == "only a superuser may create accounts for root2"
    assert (
        register(admin_account.client(), {"user": "root2", "domain": "www.example.com"})[0] == 201
    )


def test_staff_cannot_change_or_delete_the_accounts_of_a_superuser(
    staff: Account, admin_account: Account
) -> None:
    allow("admin", ["www.example.com"], [])  # admin_account is a superuser
    run_command("admin", "www.example.com")
    pk = AcmeDnsAccount.objects.get().pk
    client = staff.client()
    assert (
        client.patch(f"{ROUTE}{pk}/", {"allowfrom": ["10.0.0.0/8"]}, format="json").status_code
        == 403
    )
    assert client.delete(f"{ROUTE}{pk}/").status_code == 403
    stored = AcmeDnsAccount.objects.get()
    assert stored.allowfrom == []
