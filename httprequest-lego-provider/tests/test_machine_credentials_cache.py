"""A worker re-verifies a person's password it checked recently in microseconds, never a wrong one.

Against the real PostgreSQL of the test settings and the in-memory DNS backend. The slow check
is observed at one seam, ``django.contrib.auth.base_user.check_password`` (what
``User.check_password`` calls), wrapped with autospec so it still runs for real.
"""

from __future__ import annotations

import threading
from base64 import b64encode
from collections.abc import Iterator
from datetime import timedelta
from unittest import mock

import pytest
from api.accounts import save_account
from api.credential_cache import VerifiedCredentials, verified_credentials
from api.grants import allow
from api.models import FailedLoginCounter, MachineCredentialScope
from django.contrib.auth import hashers
from django.test.utils import override_settings
from django.utils import timezone
from dns_backends.memory import MemoryBackend
from httprequest_lego_provider import settings as production_settings
from httprequest_lego_provider.environment import LoginThrottleLimits
from rest_framework.test import APIClient

from tests.conftest import Account

pytestmark = pytest.mark.django_db

BODY = {
    "fqdn": "_acme-challenge.www.example.com.",
    "value": "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
}
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def empty_map() -> Iterator[None]:
    verified_credentials.clear()
    yield
    verified_credentials.clear()


@pytest.fixture
def person(db: None) -> Account:
    """A person's account: a chosen password (the slow hasher), allowed www.example.com."""
    user = save_account("person", PASSWORD).user
    allow("person", ["www.example.com"], [])
    return Account(user, PASSWORD)


@pytest.fixture
def slow_checks() -> Iterator[mock.MagicMock]:
    """Every password check the backend makes for a person's account, still run for real."""
    with mock.patch(
        "django.contrib.auth.base_user.check_password",
        autospec=True,
        side_effect=hashers.check_password,
    ) as spy:
        yield spy


def present(username: str, password: str) -> int:
    """POST /present with basic auth; return the status."""
    raw = b64encode(f"{username}:{password}".encode()).decode()
    client = APIClient(REMOTE_ADDR="192.0.2.1")
    client.credentials(HTTP_AUTHORIZATION=f"Basic {raw}")
    return int(client.post("/present", BODY, format="json").status_code)


def test_a_second_call_skips_the_slow_check(
    person: Account, memory_backend: MemoryBackend, slow_checks: mock.MagicMock
) -> None:
    assert present("person", PASSWORD) == 200
    assert slow_checks.call_count == 1
    for _ in range(3):
        assert present("person", PASSWORD) == 200
    assert slow_checks.call_count == 1


def test_the_production_hasher_is_checked_once_then_remembered(
    db: None, memory_backend: MemoryBackend
) -> None:
    """With the service's own hashers (PBKDF2 first), not the tests' fast ones."""
    with override_settings(PASSWORD_HASHERS=production_settings.PASSWORD_HASHERS):
        person = save_account("pbkdf2-person", PASSWORD).user
        assert person.password.startswith("pbkdf2_sha256$")
        allow("pbkdf2-person", ["www.example.com"], [])
        with mock.patch.object(
            hashers.PBKDF2PasswordHasher,
            "verify",
            autospec=True,
            side_effect=hashers.PBKDF2PasswordHasher.verify,
        ) as verify:
            assert present("pbkdf2-person", PASSWORD) == 200
            assert present("pbkdf2-person", PASSWORD) == 200
            assert present("pbkdf2-person", "wrong-password") == 401
    assert verify.call_count == 2  # the first right one and the wrong one


def test_a_wrong_password_never_hits_and_still_counts_as_a_failure(
    person: Account, memory_backend: MemoryBackend, slow_checks: mock.MagicMock
) -> None:
    assert present("person", PASSWORD) == 200
    for n in range(3):
        assert present("person", f"wrong-{n}") == 401
    assert slow_checks.call_count == 4
    assert FailedLoginCounter.objects.get(key__startswith="user:").failures == 3


def test_a_locked_out_username_is_refused_even_when_its_password_is_remembered(
    person: Account, memory_backend: MemoryBackend
) -> None:
    """Otherwise a guesser could go on guessing during a lockout at the map's speed."""
    limits = LoginThrottleLimits(per_username=2, per_address=0, window_seconds=60)
    with override_settings(LOGIN_THROTTLE=limits):
        assert present("person", PASSWORD) == 200
        assert present("person", "wrong-1") == 401
        assert present("person", "wrong-2") == 401
        assert present("person", PASSWORD) == 429


def test_a_password_change_drops_the_remembered_check(
    person: Account, memory_backend: MemoryBackend, slow_checks: mock.MagicMock
) -> None:
    assert present("person", PASSWORD) == 200
    person.user.set_password("another-long-passphrase-42")
    person.user.save()
    assert present("person", PASSWORD) == 401
    assert slow_checks.call_count == 2
    assert len(verified_credentials) == 0


def test_a_hash_changed_by_another_worker_drops_the_remembered_check(
    person: Account, memory_backend: MemoryBackend
) -> None:
    """Another worker or unit writes only the database; this one notices at the next call."""
    assert present("person", PASSWORD) == 200
    other = hashers.make_password("another-long-passphrase-42")
    type(person.user).objects.filter(pk=person.user.pk).update(password=other)
    assert present("person", PASSWORD) == 401
    assert present("person", "another-long-passphrase-42") == 200


def test_deactivation_and_expiry_apply_to_a_remembered_password(
    person: Account, memory_backend: MemoryBackend, slow_checks: mock.MagicMock
) -> None:
    assert present("person", PASSWORD) == 200
    type(person.user).objects.filter(pk=person.user.pk).update(is_active=False)
    assert present("person", PASSWORD) == 401
    type(person.user).objects.filter(pk=person.user.pk).update(is_active=True)
    assert present("person", PASSWORD) == 200
    MachineCredentialScope.objects.create(
        user=person.user, expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert present("person", PASSWORD) == 401
    MachineCredentialScope.objects.filter(user=person.user).update(
        expires_at=None, allowed_networks=["198.51.100.0/24"]
    )
    assert present("person", PASSWORD) == 403
    assert slow_checks.call_count == 1  # all of the above on the remembered check


# The map itself


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_map_is_bounded_and_drops_the_least_recently_used() -> None:
    seen = VerifiedCredentials(max_entries=3)
    for n in range(3):
        seen.remember(f"user{n}", "pw", "hash")
    assert seen.verified("user0", "pw", "hash")  # user0 is now the most recent
    seen.remember("user3", "pw", "hash")
    seen.remember("user4", "pw", "hash")
    assert len(seen) == 3
    assert not seen.verified("user1", "pw", "hash")
    assert not seen.verified("user2", "pw", "hash")
    assert all(seen.verified(name, "pw", "hash") for name in ("user0", "user3", "user4"))


def test_entries_end_after_their_lifetime() -> None:
    clock = Clock()
    seen = VerifiedCredentials(ttl_seconds=300, clock=clock)
    seen.remember("u", "pw", "hash")
    clock.now += 299
    assert seen.verified("u", "pw", "hash")
    clock.now += 1
    assert not seen.verified("u", "pw", "hash")
    assert len(seen) == 0


def test_a_hit_needs_the_same_username_password_and_stored_hash() -> None:
    seen = VerifiedCredentials()
    seen.remember("u", "pw", "hash")
    assert not seen.verified("u", "pw2", "hash")
    assert not seen.verified("u2", "pw", "hash")
    assert not seen.verified("u", "pw", "hash2")  # and that entry is gone
    assert not seen.verified("u", "pw", "hash")
    seen.remember("ab", "c", "hash")
    assert not seen.verified("a", "bc", "hash")  # no ambiguity in how the two are joined


def test_keys_are_keyed_per_process_and_hold_no_password() -> None:
    first, second = VerifiedCredentials(), VerifiedCredentials()
    first.remember("u", PASSWORD, "hash")
    second.remember("u", PASSWORD, "hash")
    (key1,), (key2,) = first._entries, second._entries
    assert key1 != key2
    assert PASSWORD.encode() not in key1
    assert first._entries[key1][0] == "hash"


def test_concurrent_use_keeps_the_bound_and_never_fails() -> None:
    seen = VerifiedCredentials(max_entries=50)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for n in range(2000):
                name = f"u{(thread * 7 + n) % 200}"
                if not seen.verified(name, "pw", "hash"):
                    seen.remember(name, "pw", "hash")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == 50
