"""Concurrent ``/update`` calls of one account, from threads, against the real PostgreSQL.

Each thread has its own database connection, as gunicorn's threads do; the backend is the
in-memory one, slowed down so that unserialised updates would interleave.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from api import backend as backend_module
from api.acmedns.accounts import NewAccount, create_account
from api.acmedns.config import AcmeDnsConfig
from api.models import AcmeDnsAccount
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import override_settings
from dns_backends import Deadline
from dns_backends.memory import MemoryBackend
from rest_framework.test import APIClient

from tests.conftest import make_account

THREADS = 8
VALUES = [f"{i:02d}" + "v" * 41 for i in range(THREADS)]


class SlowMemoryBackend(MemoryBackend):
    """The memory backend taking as long as a push, so concurrent changes overlap."""

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        time.sleep(0.05)
        super().present(fqdn, value, deadline)

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        time.sleep(0.05)
        super().cleanup(fqdn, value, deadline)


@pytest.fixture
def slow_backend(monkeypatch: pytest.MonkeyPatch) -> SlowMemoryBackend:
    backend = SlowMemoryBackend(["example.com"])
    monkeypatch.setattr(backend_module, "_backend", backend)
    monkeypatch.setattr(backend_module, "_owner_pid", os.getpid())
    return backend


def post_update(new: NewAccount, value: str, start: threading.Barrier) -> int:
    try:
        start.wait()
        response = APIClient().post(
            "/update",
            data=json.dumps({"subdomain": str(new.account.subdomain), "txt": value}),
            content_type="application/json",
            HTTP_X_API_USER=str(new.account.username),
            HTTP_X_API_KEY=new.key,
        )
        status: int = response.status_code
        return status
    finally:
        connection.close()  # this thread's own connection


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("delegated", [False, True])
def test_concurrent_updates_of_one_account_leave_two_values_in_dns_and_in_the_database(
    slow_backend: SlowMemoryBackend, delegated: bool
) -> None:
    """All succeed; the account ends with two of the values, and DNS holds exactly those two.

    Without the row lock each update would start from the same list of values: DNS would keep
    values that no update remembers (never withdrawn) and the database would lose some.
    """
    make_account("machine", domains="www.example.com")
    new = create_account(
        "machine",
        "www.example.com",
        delegated=delegated,
        allowfrom=[],
        config=AcmeDnsConfig(zone="acme-dns.example.com"),
    )
    start = threading.Barrier(THREADS)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        statuses = list(pool.map(lambda v: post_update(new, v, start), VALUES))
    assert statuses == [200] * THREADS
    stored = AcmeDnsAccount.objects.get(pk=new.account.pk).txt_values
    assert len(stored) == 2
    assert set(stored) <= set(VALUES)
    assert slow_backend.values(new.account.fulldomain) == set(stored)


class HeldMemoryBackend(MemoryBackend):
    """The memory backend holding each ``present`` until the test releases it."""

    def __init__(self, zones: list[str]) -> None:
        super().__init__(zones)
        self.entered = threading.Event()
        self.release = threading.Event()

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        self.entered.set()
        assert self.release.wait(timeout=60), "the test never released the backend"
        super().present(fqdn, value, deadline)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("delegated", [False, True])
def test_an_update_in_progress_locks_only_its_account_not_the_user(
    monkeypatch: pytest.MonkeyPatch, delegated: bool
) -> None:
    """While one account's value is being written, its user's row and other accounts are free.

    ``select_for_update`` with ``select_related("user")`` locks the joined ``auth_user`` row
    too: every other account of the user, and any change to the user, would wait for the DNS
    write. ``nowait`` turns such a wait into an error here.
    """
    backend = HeldMemoryBackend(["example.com"])
    monkeypatch.setattr(backend_module, "_backend", backend)
    monkeypatch.setattr(backend_module, "_owner_pid", os.getpid())
    make_account("machine", domains="www.example.com,example.com")
    config = AcmeDnsConfig(zone="acme-dns.example.com")
    first = create_account(
        "machine", "www.example.com", delegated=delegated, allowfrom=[], config=config
    )
    second = create_account(
        "machine", "example.com", delegated=delegated, allowfrom=[], config=config
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(post_update, first, VALUES[0], threading.Barrier(1))
        try:
            assert backend.entered.wait(timeout=60)
            with transaction.atomic():
                user = User.objects.select_for_update(nowait=True).get(username="machine")
                AcmeDnsAccount.objects.select_for_update(nowait=True).get(pk=second.account.pk)
                user.save(update_fields=["last_login"])
        finally:
            backend.release.set()
        assert pending.result() == 200
    assert backend.values(first.account.fulldomain) == {VALUES[0]}


@pytest.mark.django_db(transaction=True)
def test_an_update_waiting_for_its_account_gives_up_at_the_request_deadline(
    memory_backend: MemoryBackend,
) -> None:
    """A 503 saying to retry, instead of a worker held (and killed) behind a slow update.

    The test holds the account's row lock itself, as another update would while the backend is
    slow. Without the bound the update waits for as long as the lock is held.
    """
    make_account("machine", domains="www.example.com")
    new = create_account(
        "machine", "www.example.com", delegated=False, allowfrom=[],
        config=AcmeDnsConfig(zone="acme-dns.example.com"),
    )  # fmt: skip
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        override_settings(REQUEST_DEADLINE=0.5),
        transaction.atomic(),
    ):
        AcmeDnsAccount.objects.select_for_update().get(pk=new.account.pk)
        pending = pool.submit(answer_of_update, new, VALUES[0])
        # Without the bound this times out; leaving the block then frees the row.
        status, body = pending.result(timeout=60)
    assert status == 503
    assert body["error"] == "dns_backend_error"
    assert "deadline" in body["detail"]
    assert memory_backend.values(new.account.fulldomain) == set()
    assert AcmeDnsAccount.objects.get(pk=new.account.pk).txt_values == []


def answer_of_update(new: NewAccount, value: str) -> tuple[int, dict[str, str]]:
    try:
        response = APIClient().post(
            "/update",
            data=json.dumps({"subdomain": str(new.account.subdomain), "txt": value}),
            content_type="application/json",
            HTTP_X_API_USER=str(new.account.username),
            HTTP_X_API_KEY=new.key,
        )
        return response.status_code, response.json()
    finally:
        connection.close()
