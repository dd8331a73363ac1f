"""Basic, session and JWT authentication, and the fast path for generated passwords."""

from __future__ import annotations

import json
from base64 import b64encode

import pytest
from api.accounts import save_account
from api.hashers import ALGORITHM, is_generated_password_hash
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import get_hasher
from django.test import Client
from django.test.utils import override_settings
from dns_backends.memory import MemoryBackend
from httprequest_lego_provider import settings as production_settings
from rest_framework.test import APIClient

from tests.conftest import Account

pytestmark = pytest.mark.django_db

BODY = {
    "fqdn": "_acme-challenge.www.example.com.",
    "value": "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
}
# The hashers of the production settings themselves (tests.settings swaps in fast ones), so that
# the tests below check what the service runs with, not a copy of it.
PRODUCTION_HASHERS = production_settings.PASSWORD_HASHERS


def test_jwt_obtained_with_a_password_authenticates_present(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    tokens = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "machine", "password": machine.password},
        format="json",
    )
    assert tokens.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.json()['access']}")
    assert client.post("/present", BODY, format="json").status_code == 200


def test_jwt_refresh_returns_a_working_access_token(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    tokens = (
        APIClient()
        .post(
            "/api/v1/auth/token/",
            {"username": "machine", "password": machine.password},
            format="json",
        )
        .json()
    )
    refreshed = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    assert client.post("/present", BODY, format="json").status_code == 200


def test_jwt_with_a_bad_signature_answers_401(machine: Account) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad")
    assert client.post("/present", BODY, format="json").status_code == 401


def test_jwt_with_wrong_credentials_answers_401(machine: Account) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "machine", "password": "nope"}, format="json"
    )
    assert response.status_code == 401


def test_session_authentication_requires_a_csrf_token(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(machine.user)
    response = client.post("/present", json.dumps(BODY), content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_session_authentication_works_for_a_logged_in_user(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    client = Client()
    client.force_login(machine.user)
    response = client.post("/present", json.dumps(BODY), content_type="application/json")
    assert response.status_code == 200


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_generated_password_is_not_rehashed_with_the_slow_hasher_after_login(
    memory_backend: MemoryBackend,
) -> None:
    """Django upgrades hashes to the preferred hasher on login; ours must stay fast."""
    result = save_account("robot")
    assert result.generated_password
    stored = result.user.password
    assert stored.startswith(ALGORITHM + "$")
    account = Account(result.user, result.generated_password)
    for _ in range(2):
        assert account.client().post("/present", BODY, format="json").status_code == 403
    result.user.refresh_from_db()
    assert result.user.password == stored


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_human_passwords_use_the_slow_default_hasher() -> None:
    """A person's password gets the production settings' default: a slow, salted PBKDF2."""
    result = save_account("human", "a-long-human-password")
    assert not is_generated_password_hash(result.user.password)
    assert get_hasher("default").algorithm == "pbkdf2_sha256"
    assert result.user.password.startswith("pbkdf2_sha256$")


def test_generated_hash_check_rejects_a_wrong_password() -> None:
    hasher = get_hasher(ALGORITHM)
    encoded = hasher.encode("right-password", hasher.salt())
    assert hasher.verify("right-password", encoded)
    assert not hasher.verify("wrong-password", encoded)
    assert hasher.safe_summary(encoded)["algorithm"] == ALGORITHM


def test_jwt_refresh_for_a_deleted_user_answers_401(machine: Account) -> None:
    tokens = (
        APIClient()
        .post(
            "/api/v1/auth/token/",
            {"username": "machine", "password": machine.password},
            format="json",
        )
        .json()
    )
    machine.user.delete()
    refreshed = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 401


def test_a_nul_byte_in_the_basic_auth_username_answers_401(memory_backend: MemoryBackend) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + b64encode(b"ma\x00chine:pw").decode())
    assert client.post("/present", BODY, format="json").status_code == 401


@pytest.mark.parametrize("kind", ["generated", "human", "unknown"])
def test_every_failed_login_runs_the_slow_hasher(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed login costs the same whoever it names, so timing reveals no account kind."""
    save_account("robot")
    save_account("person", "a-long-human-password")
    username = {"generated": "robot", "human": "person", "unknown": "nobody"}[kind]
    slow = get_hasher("default")
    calls: list[str] = []
    real_encode = type(slow).encode

    def counting_encode(self: object, password: str, salt: str, *args: object) -> str:
        calls.append(password)
        return real_encode(self, password, salt, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(type(slow), "encode", counting_encode)
    assert authenticate(username=username, password="wrong-password") is None
    assert calls, f"a failed login for a {kind} account ran no slow hash"
