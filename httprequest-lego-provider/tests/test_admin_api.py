"""The staff-only REST API under /api/v1/ and the Django admin."""

from __future__ import annotations

import pytest
from api.models import Domain, DomainUserPermission
from django.contrib.auth import authenticate
from django.contrib.auth.models import User

from tests.conftest import Account, make_account

pytestmark = pytest.mark.django_db

ROUTES = ["/api/v1/domains/", "/api/v1/domain-user-permissions/", "/api/v1/users/"]


@pytest.mark.parametrize("route", ROUTES)
def test_admin_routes_refuse_non_staff_users_with_403(machine: Account, route: str) -> None:
    assert machine.client().get(route).status_code == 403


@pytest.mark.parametrize("route", ROUTES)
def test_admin_routes_refuse_anonymous_users_with_401(route: str) -> None:
    from rest_framework.test import APIClient

    assert APIClient().get(route).status_code == 401


def test_domains_can_be_created_listed_filtered_and_deleted(admin_account: Account) -> None:
    client = admin_account.client()
    created = client.post("/api/v1/domains/", {"fqdn": "Example.COM."}, format="json")
    assert created.status_code == 201
    assert created.json()["fqdn"] == "example.com"
    client.post("/api/v1/domains/", {"fqdn": "example.org"}, format="json")
    listed = client.get("/api/v1/domains/").json()
    assert [d["fqdn"] for d in listed] == ["example.com", "example.org"]
    filtered = client.get("/api/v1/domains/", {"fqdn": "example.org"}).json()
    assert [d["fqdn"] for d in filtered] == ["example.org"]
    assert client.delete(f"/api/v1/domains/{created.json()['id']}/").status_code == 204
    assert list(Domain.objects.values_list("fqdn", flat=True)) == ["example.org"]


@pytest.mark.parametrize("fqdn", ["bad name.com", 'x".example.com', "-x.com", "com", ""])
def test_invalid_domain_names_are_refused_with_400(admin_account: Account, fqdn: str) -> None:
    response = admin_account.client().post("/api/v1/domains/", {"fqdn": fqdn}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("fqdn: ")


def test_duplicate_domain_is_refused_with_400(admin_account: Account) -> None:
    client = admin_account.client()
    client.post("/api/v1/domains/", {"fqdn": "example.com"}, format="json")
    assert (
        client.post("/api/v1/domains/", {"fqdn": "example.com."}, format="json").status_code == 400
    )


def test_grants_can_be_created_and_filtered_by_username_and_fqdn(admin_account: Account) -> None:
    client = admin_account.client()
    alice = make_account("alice", domains="a.example.com")
    make_account("bob", domains="b.example.com", subdomains="a.example.com")
    domain = Domain.objects.create(fqdn="c.example.com")
    created = client.post(
        "/api/v1/domain-user-permissions/",
        {"domain": domain.pk, "user": alice.user.pk, "access_level": "subdomain", "text": "ci"},
        format="json",
    )
    assert created.status_code == 201

    def pairs(query: dict[str, str]) -> set[tuple[str, str]]:
        rows = client.get("/api/v1/domain-user-permissions/", query).json()
        found = set()
        for row in rows:
            grant = DomainUserPermission.objects.get(pk=row["id"])
            found.add((grant.user.username, grant.domain.fqdn))
        return found

    assert pairs({"username": "alice"}) == {("alice", "a.example.com"), ("alice", "c.example.com")}
    assert pairs({"fqdn": "a.example.com"}) == {
        ("alice", "a.example.com"),
        ("bob", "a.example.com"),
    }
    assert pairs({"username": "bob", "fqdn": "a.example.com"}) == {("bob", "a.example.com")}


def test_duplicate_grant_is_refused_with_400(admin_account: Account) -> None:
    alice = make_account("alice", domains="a.example.com")
    grant = DomainUserPermission.objects.get(user=alice.user)
    response = admin_account.client().post(
        "/api/v1/domain-user-permissions/",
        {"domain": grant.domain_id, "user": alice.user.pk, "access_level": "domain"},
        format="json",
    )
    assert response.status_code == 400


def test_invalid_access_level_is_refused_with_400(admin_account: Account) -> None:
    alice = make_account("alice")
    domain = Domain.objects.create(fqdn="example.com")
    response = admin_account.client().post(
        "/api/v1/domain-user-permissions/",
        {"domain": domain.pk, "user": alice.user.pk, "access_level": "everything"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("access_level: ")


def test_users_passwords_are_write_only_and_hashed(admin_account: Account) -> None:
    client = admin_account.client()
    created = client.post(
        "/api/v1/users/", {"username": "carol", "password": "a-long-human-password"}, format="json"
    )
    assert created.status_code == 201
    assert "password" not in created.json()
    user = User.objects.get(username="carol")
    assert user.password != "a-long-human-password"
    assert authenticate(username="carol", password="a-long-human-password") == user
    assert all("password" not in row for row in client.get("/api/v1/users/").json())


def test_users_can_be_filtered_by_username_and_updated(admin_account: Account) -> None:
    client = admin_account.client()
    make_account("dave")
    rows = client.get("/api/v1/users/", {"username": "dave"}).json()
    assert [row["username"] for row in rows] == ["dave"]
    patched = client.patch(
        f"/api/v1/users/{rows[0]['id']}/", {"password": "another-long-password"}, format="json"
    )
    assert patched.status_code == 200
    assert authenticate(username="dave", password="another-long-password") is not None


def test_django_admin_is_served_at_admin(admin_account: Account) -> None:
    from django.test import Client

    client = Client()
    client.force_login(admin_account.user)
    assert client.get("/admin/api/domainuserpermission/").status_code == 200
    assert client.get("/admin/api/domain/").status_code == 200


def test_admin_static_files_are_served_by_the_app() -> None:
    from django.test import Client

    response = Client().get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"body" in b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_token_endpoint_answers_400_to_a_huge_json_integer() -> None:
    from rest_framework.test import APIClient

    body = b'{"username": ' + b"9" * 5_000 + b', "password": "x"}'
    response = APIClient().post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 400


def make_staff(username: str = "operator") -> Account:
    """A staff account (not a superuser) that holds every permission on users and grants."""
    from django.contrib.auth.models import Permission

    account = make_account(username)
    account.user.is_staff = True
    account.user.save()
    account.user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=("auth", "api"))
    )
    return account


@pytest.mark.parametrize(
    "change",
    [
        {"password": "a-new-long-password-for-root"},
        {"is_active": False},
        {"is_superuser": False},
        {"is_staff": False},
        {"username": "not-root-any-more"},
        {"email": "attacker@example.com"},
    ],
)
@pytest.mark.parametrize("target_kind", ["superuser", "staff"])
def test_staff_cannot_change_a_superuser_or_another_staff_account(
    admin_account: Account, change: dict[str, object], target_kind: str
) -> None:
    """The takeover: a staff user PATCHed the superuser's password and logged in as it."""
    operator = make_staff()
    target = admin_account.user if target_kind == "superuser" else make_staff("other").user
    before = User.objects.get(pk=target.pk)
    response = operator.client().patch(f"/api/v1/users/{target.pk}/", change, format="json")
    assert response.status_code == 403
    assert "superuser" in response.json()["detail"]
    after = User.objects.get(pk=target.pk)
    assert (after.password, after.is_active, after.is_staff, after.is_superuser) == (
        before.password,
        before.is_active,
        before.is_staff,
        before.is_superuser,
    )
    assert (after.username, after.email) == (before.username, before.email)


def test_staff_cannot_delete_or_replace_a_superuser(admin_account: Account) -> None:
    client = make_staff().client()
    url = f"/api/v1/users/{admin_account.user.pk}/"
    assert client.delete(url).status_code == 403
    assert (
        client.put(url, {"username": "admin", "is_active": False}, format="json").status_code
        == 403
    )
    assert User.objects.get(pk=admin_account.user.pk).is_active


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_staff_cannot_make_a_staff_or_superuser_account(flag: str) -> None:
    operator = make_staff()
    machine = make_account("robot")
    client = operator.client()
    created = client.post("/api/v1/users/", {"username": "mole", flag: True}, format="json")
    assert created.status_code == 403
    assert not User.objects.filter(username="mole").exists()
    promoted = client.patch(f"/api/v1/users/{machine.user.pk}/", {flag: True}, format="json")
    assert promoted.status_code == 403
    machine.user.refresh_from_db()
    assert not machine.user.is_staff
    assert not machine.user.is_superuser
    assert (
        client.patch(f"/api/v1/users/{operator.user.pk}/", {flag: True}, format="json").status_code
        == 403
    )


def test_staff_still_manage_machine_users_and_grants(admin_account: Account) -> None:
    client = make_staff().client()
    created = client.post(
        "/api/v1/users/",
        {"username": "robot", "password": "a-long-machine-password"},
        format="json",
    )
    assert created.status_code == 201
    robot = created.json()["id"]
    assert (
        client.patch(f"/api/v1/users/{robot}/", {"is_active": False}, format="json").status_code
        == 200
    )
    domain = Domain.objects.create(fqdn="example.com")
    grant = client.post(
        "/api/v1/domain-user-permissions/",
        {"domain": domain.pk, "user": robot, "access_level": "domain"},
        format="json",
    )
    assert grant.status_code == 201
    assert client.get(f"/api/v1/users/{admin_account.user.pk}/").status_code == 200
    assert client.delete(f"/api/v1/users/{robot}/").status_code == 204


def test_a_superuser_may_change_staff_and_superuser_accounts(admin_account: Account) -> None:
    operator = make_staff()
    client = admin_account.client()
    demoted = client.patch(
        f"/api/v1/users/{operator.user.pk}/", {"is_staff": False}, format="json"
    )
    assert demoted.status_code == 200
    promoted = client.patch(
        f"/api/v1/users/{operator.user.pk}/",
        {"is_superuser": True, "is_staff": True},
        format="json",
    )
    assert promoted.status_code == 200
    assert User.objects.get(pk=operator.user.pk).is_superuser


def test_staff_in_the_django_admin_cannot_change_or_delete_a_superuser(
    admin_account: Account,
) -> None:
    from django.test import Client

    client = Client()
    client.force_login(make_staff().user)
    root = admin_account.user
    before = User.objects.get(pk=root.pk).password
    password_page = f"/admin/auth/user/{root.pk}/password/"
    response = client.post(
        password_page, {"password1": "x-long-takeover-pw", "password2": "x-long-takeover-pw"}
    )
    assert response.status_code == 403
    change = client.post(
        f"/admin/auth/user/{root.pk}/change/",
        {
            "username": "root2",
            "is_active": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00",
        },
    )
    assert change.status_code == 403
    assert client.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code == 403
    after = User.objects.get(pk=root.pk)
    assert (after.password, after.username, after.is_active) == (before, "admin", True)


def test_staff_in_the_django_admin_cannot_make_an_account_superuser() -> None:
    from django.test import Client

    operator = make_staff()
    robot = make_account("robot").user
    client = Client()
    client.force_login(operator.user)
    page = client.get(f"/admin/auth/user/{robot.pk}/change/")
    assert page.status_code == 200
    assert b'name="is_superuser"' not in page.content
    assert b'name="is_staff"' not in page.content
    client.post(
        f"/admin/auth/user/{robot.pk}/change/",
        {
            "username": "robot",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00",
        },
    )
    robot.refresh_from_db()
    assert not robot.is_staff
    assert not robot.is_superuser


@pytest.mark.parametrize("password", ["1", "password", "12345678901234"])
@pytest.mark.parametrize(
    "path", ["api create", "api update", "admin add", "admin password", "cli"]
)
def test_every_path_refuses_a_password_that_breaks_the_rule(
    admin_account: Account, path: str, password: str
) -> None:
    """One rule: the admin API accepted "1" while the command line refused it."""
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.test import Client

    robot = make_account("robot").user
    before = robot.password
    admin_client = Client()
    admin_client.force_login(admin_account.user)
    if path == "api create":
        response = admin_account.client().post(
            "/api/v1/users/", {"username": "newbot", "password": password}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["detail"].startswith("password: ")
        assert not User.objects.filter(username="newbot").exists()
    elif path == "api update":
        response = admin_account.client().patch(
            f"/api/v1/users/{robot.pk}/", {"password": password}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["detail"].startswith("password: ")
    elif path == "admin add":
        page = admin_client.post(
            "/admin/auth/user/add/",
            {
                "username": "newbot",
                "usable_password": "true",
                "password1": password,
                "password2": password,
            },
        )
        assert page.status_code == 200  # the form again, with the error
        assert not User.objects.filter(username="newbot").exists()
    elif path == "admin password":
        page = admin_client.post(
            f"/admin/auth/user/{robot.pk}/password/",
            {"usable_password": "true", "password1": password, "password2": password},
        )
        assert page.status_code == 200  # the form again, with the error
    else:
        with pytest.raises(CommandError):
            call_command("create_user", "robot", password)
    assert User.objects.get(pk=robot.pk).password == before


@pytest.mark.parametrize("path", ["api create", "api update", "admin password"])
def test_a_password_that_keeps_the_rule_is_accepted_on_every_path(
    admin_account: Account, path: str
) -> None:
    from django.test import Client

    password = "correct-horse-battery-staple"
    robot = make_account("robot").user
    if path == "api create":
        response = admin_account.client().post(
            "/api/v1/users/", {"username": "newbot", "password": password}, format="json"
        )
        assert response.status_code == 201
        assert authenticate(username="newbot", password=password) is not None
        return
    if path == "api update":
        response = admin_account.client().patch(
            f"/api/v1/users/{robot.pk}/", {"password": password}, format="json"
        )
        assert response.status_code == 200
    else:
        client = Client()
        client.force_login(admin_account.user)
        page = client.post(
            f"/admin/auth/user/{robot.pk}/password/",
            {"usable_password": "true", "password1": password, "password2": password},
        )
        assert page.status_code == 302
    assert authenticate(username="robot", password=password) is not None


def test_the_one_password_rule_is_what_every_path_calls(
    admin_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stricter rule put at the one seam is enforced by the API and the Django admin alike."""
    import api.accounts
    from django.core.exceptions import ValidationError
    from django.test import Client

    def refuse_everything(password: str, user: User) -> None:
        raise ValidationError("refused by the project rule")

    monkeypatch.setattr(api.accounts, "validate_password", refuse_everything)
    robot = make_account("robot").user
    good = "correct-horse-battery-staple"
    api_response = admin_account.client().patch(
        f"/api/v1/users/{robot.pk}/", {"password": good}, format="json"
    )
    assert api_response.json()["detail"] == "password: refused by the project rule"
    client = Client()
    client.force_login(admin_account.user)
    page = client.post(
        f"/admin/auth/user/{robot.pk}/password/",
        {"usable_password": "true", "password1": good, "password2": good},
    )
    assert b"refused by the project rule" in page.content


def test_changing_your_own_password_in_the_django_admin_follows_the_rule(
    admin_account: Account,
) -> None:
    """This session stays logged in; every other session of the account ends."""
    from django.test import Client

    this, other = Client(), Client()
    for client in (this, other):
        assert client.login(username="admin", password=admin_account.password)
    form = {"old_password": admin_account.password, "new_password1": "1", "new_password2": "1"}
    refused = this.post("/admin/password_change/", form)
    assert refused.status_code == 200
    assert b"too short" in refused.content
    good = "correct-horse-battery-staple"
    form |= {"new_password1": good, "new_password2": good}
    done = this.post("/admin/password_change/", form)
    assert done.status_code == 302, done.content
    assert done["Location"] == "/admin/password_change/done/"
    assert authenticate(username="admin", password=good) is not None
    assert this.get("/admin/").status_code == 200
    assert other.get("/admin/").status_code == 302
