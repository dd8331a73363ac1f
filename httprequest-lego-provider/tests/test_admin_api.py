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
