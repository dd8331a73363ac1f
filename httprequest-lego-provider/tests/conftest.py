"""Fixtures shared by the provider's tests: users with grants and a fresh in-memory backend."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from api.accounts import save_account
from api.backend import get_backend, reset_backend
from api.grants import allow
from django.contrib.auth.models import User
from dns_backends.memory import MemoryBackend
from rest_framework.test import APIClient


@pytest.fixture
def memory_backend() -> Iterator[MemoryBackend]:
    """The process's backend, fresh for each test (settings choose the memory backend)."""
    reset_backend()
    backend = get_backend()
    assert isinstance(backend, MemoryBackend)
    yield backend
    reset_backend()


class Account:
    """A user and the password to send with basic auth."""

    def __init__(self, user: User, password: str) -> None:
        self.user = user
        self.password = password

    def basic_auth(self) -> str:
        raw = f"{self.user.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=self.basic_auth())
        return client


def make_account(username: str, *, domains: str = "", subdomains: str = "") -> Account:
    result = save_account(username)
    assert result.generated_password
    if domains or subdomains:
        allow(
            username, [d for d in domains.split(",") if d], [s for s in subdomains.split(",") if s]
        )
    return Account(result.user, result.generated_password)


@pytest.fixture
def machine(db: None) -> Account:
    """A machine account allowed www.example.com exactly and anything below example.co.uk."""
    return make_account(
        "machine", domains="www.example.com,example.com", subdomains="example.co.uk"
    )


@pytest.fixture
def admin_account(db: None) -> Account:
    result = save_account("admin", superuser=True)
    assert result.generated_password
    return Account(result.user, result.generated_password)
