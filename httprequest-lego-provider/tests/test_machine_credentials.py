"""Machine credentials' scope: allowed networks, expiry, rotation, and the one client address.

Against the real PostgreSQL of the test settings and the in-memory DNS backend (itself checked
by the backend contract suite); tokens come from the real simplejwt endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from api.acmedns.networks import account_admits
from api.client_address import client_address, parse_address
from api.models import AcmeDnsAccount, FailedLoginCounter, MachineCredentialScope
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from dns_backends.memory import MemoryBackend
from httprequest_lego_provider.environment import ClientAddressConfig, ProviderEnvironment
from rest_framework.test import APIClient

from tests.conftest import Account, make_account

pytestmark = pytest.mark.django_db

BODY = {
    "fqdn": "_acme-challenge.www.example.com.",
    "value": "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
}
NAME = "_acme-challenge.www.example.com"


@pytest.fixture
def demo(db: None) -> Account:
    """A machine account (generated password) allowed www.example.com."""
    return make_account("demo", domains="www.example.com")


def restrict(account: Account, networks: list[str], expires_at: Any = None) -> None:
    MachineCredentialScope.objects.update_or_create(
        user=account.user, defaults={"allowed_networks": networks, "expires_at": expires_at}
    )


def call(
    account: Account, path: str = "/present", password: str | None = None, **meta: str
) -> Any:
    client = APIClient()
    client.defaults.update(meta)
    auth = Account(account.user, account.password if password is None else password)
    client.credentials(HTTP_AUTHORIZATION=auth.basic_auth())
    return client.post(path, BODY, format="json")


# Allowed networks on /present and /cleanup


@pytest.mark.parametrize("path", ["/present", "/cleanup"])
def test_an_address_outside_the_allowed_networks_gets_403_naming_it_and_writes_nothing(
    demo: Account, memory_backend: MemoryBackend, path: str
) -> None:
    restrict(demo, ["127.0.0.0/30", "2001:db8::/32"])
    if path == "/cleanup":
        assert call(demo, "/present", REMOTE_ADDR="127.0.0.1").status_code == 200
    response = call(demo, path, REMOTE_ADDR="127.0.0.9")
    assert response.status_code == 403
    assert response.json() == {"detail": "address 127.0.0.9 may not use account demo"}
    assert memory_backend.values(NAME) == ({BODY["value"]} if path == "/cleanup" else set())


@pytest.mark.parametrize("address", ["127.0.0.2", "2001:db8::5", "::ffff:127.0.0.3"])
def test_an_address_inside_the_allowed_networks_is_served(
    demo: Account, memory_backend: MemoryBackend, address: str
) -> None:
    restrict(demo, ["127.0.0.0/30", "2001:db8::/32"])
    assert call(demo, REMOTE_ADDR=address).status_code == 200
    assert memory_backend.values(NAME) == {BODY["value"]}


def test_an_empty_list_allows_every_address(demo: Account, memory_backend: MemoryBackend) -> None:
    restrict(demo, [])
    assert call(demo, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_a_wrong_password_from_outside_is_a_401_and_counts_as_a_failure(
    demo: Account, memory_backend: MemoryBackend
) -> None:
    """The scope is checked only once the password is right: a guesser learns nothing."""
    restrict(demo, ["127.0.0.0/30"])
    response = call(demo, password="wrong-password", REMOTE_ADDR="127.0.0.9")
    assert response.status_code == 401
    assert FailedLoginCounter.objects.filter(key__startswith="user:").get().failures == 1


def test_the_forwarded_address_counts_only_behind_the_configured_proxies(
    demo: Account, memory_backend: MemoryBackend
) -> None:
    restrict(demo, ["192.0.2.0/24"])
    forged = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.7"}
    assert call(demo, **forged).status_code == 403  # no proxy configured: the peer counts
    with override_settings(CLIENT_ADDRESS=ClientAddressConfig(proxy_hops=1)):
        assert call(demo, **forged).status_code == 200
        spoofed = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.7, 198.51.100.4"}
        response = call(demo, **spoofed)
        assert response.status_code == 403
        assert response.json()["detail"] == "address 198.51.100.4 may not use account demo"
        missing = call(demo, REMOTE_ADDR="192.0.2.9")
        assert missing.status_code == 403
        assert missing.json()["detail"] == "address unknown may not use account demo"


def test_the_token_endpoint_and_the_admin_login_enforce_the_networks_too(
    demo: Account, admin_account: Account
) -> None:
    restrict(demo, ["127.0.0.0/30"])
    credentials = {"username": "demo", "password": demo.password}
    refused = APIClient(REMOTE_ADDR="127.0.0.9").post(
        "/api/v1/auth/token/", credentials, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "address 127.0.0.9 may not use account demo"
    allowed = APIClient(REMOTE_ADDR="127.0.0.1").post(
        "/api/v1/auth/token/", credentials, format="json"
    )
    assert allowed.status_code == 200
    restrict(admin_account, ["127.0.0.0/30"])
    page = Client(REMOTE_ADDR="127.0.0.9").post(
        "/admin/login/",
        {"username": "admin", "password": admin_account.password, "next": "/admin/"},
    )
    assert page.status_code == 403
    assert page.content == b"address 127.0.0.9 may not use account admin\n"


def test_a_session_ends_when_used_from_outside_the_networks(admin_account: Account) -> None:
    session = Client(REMOTE_ADDR="127.0.0.1")
    assert (
        session.post(
            "/admin/login/",
            {"username": "admin", "password": admin_account.password, "next": "/admin/"},
        ).status_code
        == 302
    )
    assert session.get("/admin/").status_code == 200
    restrict(admin_account, ["127.0.0.0/30"])
    assert session.get("/admin/").status_code == 200
    assert session.get("/admin/", REMOTE_ADDR="127.0.0.9").status_code == 302  # to the login
    assert session.get("/admin/").status_code == 302  # logged out for good


# Expiry


def test_an_expired_password_gets_401_saying_so(
    demo: Account, memory_backend: MemoryBackend
) -> None:
    restrict(demo, [], expires_at=timezone.now() + timedelta(hours=1))
    assert call(demo).status_code == 200
    restrict(demo, [], expires_at=timezone.now() - timedelta(seconds=1))
    response = call(demo)
    assert response.status_code == 401
    assert response.json() == {"detail": "the password of account demo expired"}
    assert response["WWW-Authenticate"].startswith("Basic")
    wrong = call(demo, password="wrong-password")
    assert wrong.json()["detail"] != response.json()["detail"]  # only the right one learns it


def test_tokens_end_at_the_expiry(demo: Account, memory_backend: MemoryBackend) -> None:
    tokens = APIClient().post(
        "/api/v1/auth/token/", {"username": "demo", "password": demo.password}, format="json"
    )
    assert tokens.status_code == 200
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert bearer.post("/present", BODY, format="json").status_code == 200
    restrict(demo, [], expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer.post("/present", BODY, format="json").status_code == 401
    refreshed = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens.json()["refresh"]}, format="json"
    )
    assert refreshed.status_code == 401


# Staff edit the scope: admin REST API and Django admin


def test_staff_set_and_read_the_scope_through_the_admin_api(
    demo: Account, admin_account: Account
) -> None:
    client = admin_account.client()
    route = f"/api/v1/users/{demo.user.pk}/"
    assert client.get(route).json()["allowed_networks"] == []
    assert client.get(route).json()["expires_at"] is None
    changed = client.patch(
        route,
        {
            "allowed_networks": ["127.0.0.1/30", "2001:DB8::/32"],
            "expires_at": "2030-01-02T03:04:05Z",
        },
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["allowed_networks"] == ["127.0.0.0/30", "2001:db8::/32"]
    assert changed.json()["expires_at"] == "2030-01-02T03:04:05Z"
    scope = MachineCredentialScope.objects.get(user=demo.user)
    assert scope.allowed_networks == ["127.0.0.0/30", "2001:db8::/32"]
    # A partial update keeps the other field; null removes the expiry.
    assert client.patch(route, {"expires_at": None}, format="json").status_code == 200
    assert client.get(route).json()["allowed_networks"] == ["127.0.0.0/30", "2001:db8::/32"]
    assert client.get(route).json()["expires_at"] is None


@pytest.mark.parametrize(
    "networks", [["127.0.0.1"], ["not-a-network/8"], "127.0.0.0/8", [["x"]], ["10.0.0.0/8"] * 65]
)
def test_the_admin_api_refuses_networks_that_are_not_cidr(
    demo: Account, admin_account: Account, networks: object
) -> None:
    route = f"/api/v1/users/{demo.user.pk}/"
    response = admin_account.client().patch(route, {"allowed_networks": networks}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("allowed_networks: allowed networks ")
    assert not MachineCredentialScope.objects.exists()


def test_a_new_user_can_be_created_with_a_scope(admin_account: Account) -> None:
    response = admin_account.client().post(
        "/api/v1/users/",
        {"username": "lego1", "allowed_networks": ["192.0.2.0/24"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert MachineCredentialScope.objects.get(user__username="lego1").allowed_networks == [
        "192.0.2.0/24"
    ]


def test_non_staff_cannot_change_their_own_scope(demo: Account) -> None:
    response = demo.client().patch(
        f"/api/v1/users/{demo.user.pk}/", {"allowed_networks": []}, format="json"
    )
    assert response.status_code == 403


def admin_client(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


def scope_form(user_id: int, networks: str) -> dict[str, str]:
    return {
        "user": str(user_id),
        "allowed_networks": networks,
        "expires_at_0": "2030-01-02",
        "expires_at_1": "03:04:05",
    }


def test_the_django_admin_edits_the_scope_as_text(demo: Account, admin_account: Account) -> None:
    client = admin_client(admin_account)
    added = client.post(
        "/admin/api/machinecredentialscope/add/",
        scope_form(demo.user.pk, "127.0.0.1/30\n2001:db8::/32, 2001:db8::/32"),
    )
    assert added.status_code == 302
    scope = MachineCredentialScope.objects.get(user=demo.user)
    assert scope.allowed_networks == ["127.0.0.0/30", "2001:db8::/32"]
    assert scope.expires_at is not None
    assert scope.expires_at.year == 2030
    change = f"/admin/api/machinecredentialscope/{demo.user.pk}/change/"
    page = client.get(change)
    assert b"127.0.0.0/30\n2001:db8::/32" in page.content
    refused = client.post(change, scope_form(demo.user.pk, "not a network"))
    assert refused.status_code == 200
    assert b"allowed networks entries must be networks like 192.0.2.0/24" in refused.content
    assert MachineCredentialScope.objects.get(user=demo.user).allowed_networks == [
        "127.0.0.0/30",
        "2001:db8::/32",
    ]


def test_staff_cannot_scope_a_superuser_in_the_django_admin(
    demo: Account, admin_account: Account
) -> None:
    """Otherwise a staff account could lock a superuser out of every login."""
    from tests.test_admin_api import make_staff

    client = admin_client(make_staff())
    refused = client.post(
        "/admin/api/machinecredentialscope/add/", scope_form(admin_account.user.pk, "")
    )
    assert refused.status_code == 200
    assert not MachineCredentialScope.objects.exists()
    MachineCredentialScope.objects.create(user=admin_account.user)
    change = f"/admin/api/machinecredentialscope/{admin_account.user.pk}/change/"
    client.post(change, scope_form(admin_account.user.pk, "192.0.2.0/24"))
    assert MachineCredentialScope.objects.get(user=admin_account.user).allowed_networks == []
    assert (
        client.post(
            "/admin/api/machinecredentialscope/add/", scope_form(demo.user.pk, "192.0.2.0/24")
        ).status_code
        == 302
    )


# acme-dns accounts of a scoped user


def test_an_acmedns_account_is_admitted_only_where_and_while_its_user_is(demo: Account) -> None:
    account = AcmeDnsAccount(user=demo.user, allowfrom=[])
    inside, outside = parse_address("127.0.0.1"), parse_address("127.0.0.9")
    assert account_admits(account, outside)
    restrict(demo, ["127.0.0.0/30"])
    demo.user.refresh_from_db()
    account.user = type(demo.user).objects.get(pk=demo.user.pk)
    assert account_admits(account, inside)
    assert not account_admits(account, outside)
    assert not account_admits(account, None)
    account.allowfrom = ["2001:db8::/32"]
    assert not account_admits(account, inside)  # both lists must admit the address
    account.allowfrom = []
    restrict(demo, [], expires_at=timezone.now() - timedelta(seconds=1))
    account.user = type(demo.user).objects.get(pk=demo.user.pk)
    assert not account_admits(account, inside)


# Rotation


def rotate(username: str) -> str:
    out = StringIO()
    call_command("rotate_password", username, stdout=out)
    return out.getvalue()


def test_rotate_password_prints_a_new_password_once_and_ends_the_old_one_and_its_tokens(
    demo: Account, memory_backend: MemoryBackend
) -> None:
    tokens = APIClient().post(
        "/api/v1/auth/token/", {"username": "demo", "password": demo.password}, format="json"
    )
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert call(demo).status_code == 200
    output = rotate("demo")
    lines = output.splitlines()
    assert lines[0] == "rotated the password of user demo"
    new_password = lines[1].removeprefix("password: ")
    assert len(new_password) == 43
    assert new_password != demo.password
    assert output.count(new_password) == 1
    assert call(demo).status_code == 401
    assert call(demo, password=new_password).status_code == 200
    assert bearer.post("/present", BODY, format="json").status_code == 401
    demo.user.refresh_from_db()
    assert new_password not in demo.user.password


def test_rotate_password_of_an_unknown_user_fails_with_a_message(db: None) -> None:
    with pytest.raises(CommandError, match="no user 'ghost'"):
        rotate("ghost")


# The one client address


@pytest.mark.parametrize(
    ("meta", "hops", "expected"),
    [
        ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}, 0, "192.0.2.1"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5"}, 1,
         "203.0.113.5"),
        ({"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5, 10.0.0.2"},
         2, "203.0.113.5"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}, 3, "203.0.113.5"),
        ({"REMOTE_ADDR": "10.0.0.2"}, 1, None),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": " , "}, 1, None),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "not-an-address"}, 1, None),
        ({"REMOTE_ADDR": "::ffff:192.0.2.4"}, 0, "192.0.2.4"),
        ({"REMOTE_ADDR": "2001:db8::1"}, 0, "2001:db8::1"),
        ({"REMOTE_ADDR": "garbage"}, 0, None),
    ],
)  # fmt: skip
def test_client_address_is_the_peer_or_the_entry_of_the_last_trusted_proxy(
    meta: dict[str, str], hops: int, expected: str | None
) -> None:
    assert client_address(meta, hops) == parse_address(expected)


@pytest.fixture
def settings_hops() -> Iterator[None]:
    with override_settings(CLIENT_ADDRESS=ClientAddressConfig(proxy_hops=2)):
        yield


def test_client_address_reads_the_configured_hops(settings_hops: None) -> None:
    meta = {"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5, 10.0.0.2"}
    assert str(client_address(meta)) == "203.0.113.5"


def test_the_proxy_hops_come_from_the_environment() -> None:
    environ = {"DJANGO_SECRET_KEY": "k", "DJANGO_PROXY_HOPS": "2"}
    assert ProviderEnvironment.from_env(environ).client_address == ClientAddressConfig(2)
    assert ProviderEnvironment.from_env({"DJANGO_SECRET_KEY": "k"}).client_address.proxy_hops == 0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DJANGO_PROXY_HOPS": "-1"}, "DJANGO_PROXY_HOPS must be a whole number"),
        (
            {"DJANGO_TRUSTED_PROXY_HEADER": "X-Forwarded-For"},
            "DJANGO_TRUSTED_PROXY_HEADER is replaced by DJANGO_PROXY_HOPS",
        ),
    ],
)
def test_bad_client_address_settings_stop_the_start_naming_the_variable(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        ProviderEnvironment.from_env({"DJANGO_SECRET_KEY": "k", **environ})
