"""Failed logins are throttled per username and per client address (real PostgreSQL).

Basic auth, the JWT token endpoint and the Django admin login share the counters; a locked-out
attempt answers 429 with Retry-After without a password check, and a correct generated password
is never throttled (nor does it read the counters).
"""

from __future__ import annotations

import logging
import re
from base64 import b64encode
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from api.accounts import save_account
from api.models import FailedLoginCounter
from api.throttle import counted_address
from django.contrib.auth.hashers import get_hasher
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from httprequest_lego_provider.environment import LoginThrottleLimits
from rest_framework.test import APIClient

from tests.conftest import Account

pytestmark = pytest.mark.django_db

BODY = {
    "fqdn": "_acme-challenge.www.example.com.",
    "value": "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
}
HUMAN_PASSWORD = "correct-horse-battery-staple"
PER_USERNAME = 3
PER_ADDRESS = 5
WINDOW = 60
LIMITS = LoginThrottleLimits(
    per_username=PER_USERNAME, per_address=PER_ADDRESS, window_seconds=WINDOW, proxy_hops=0
)


@pytest.fixture(autouse=True)
def small_limits() -> Iterator[None]:
    with override_settings(LOGIN_THROTTLE=LIMITS):
        yield


@pytest.fixture
def person(db: None) -> Account:
    """A human account: a chosen password on the slow hasher."""
    return Account(save_account("person", HUMAN_PASSWORD).user, HUMAN_PASSWORD)


def basic(username: str, password: str, address: str = "192.0.2.1") -> int:
    """POST /present with basic auth from ``address``; return the status."""
    raw = b64encode(f"{username}:{password}".encode()).decode()
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Basic {raw}")
    return int(client.post("/present", BODY, format="json").status_code)


def token(username: str, password: str, address: str = "192.0.2.1") -> Any:
    """POST the JWT token endpoint from ``address``."""
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def admin_login(username: str, password: str, address: str = "192.0.2.1") -> Any:
    """POST the Django admin's login form from ``address``."""
    return Client(REMOTE_ADDR=address).post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )


def exhaust(username: str, address: str = "192.0.2.1") -> None:
    """Spend the username's allowance of failures."""
    for _ in range(PER_USERNAME):
        assert basic(username, "wrong-password", address) == 401


def test_basic_auth_answers_429_with_retry_after_once_the_username_is_locked_out(
    person: Account,
) -> None:
    """Before the fix every guess was answered 401, without end."""
    exhaust("person")
    client = APIClient(REMOTE_ADDR="192.0.2.1")
    client.credentials(HTTP_AUTHORIZATION=Account(person.user, "wrong").basic_auth())
    response: Any = client.post("/present", BODY, format="json")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= WINDOW
    assert response.json()["detail"].startswith("too many failed logins")


def test_the_token_endpoint_is_throttled_and_shares_the_counters(person: Account) -> None:
    exhaust("person")
    response = token("person", "wrong-password")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= WINDOW


def test_the_admin_login_is_throttled_and_shares_the_counters(person: Account) -> None:
    for _ in range(PER_USERNAME):
        page = admin_login("person", "wrong-password")
        assert page.status_code == 200
        assert b"Please enter the correct username and password" in page.content
    locked = admin_login("person", "wrong-password")
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= WINDOW
    assert basic("person", "wrong-password") == 429


def test_unknown_usernames_are_throttled_too() -> None:
    exhaust("nobody")
    assert basic("nobody", "wrong-password") == 429


def test_a_locked_out_username_is_refused_even_with_the_right_human_password(
    person: Account,
) -> None:
    """A lockout that let the right guess through would tell the guesser they found it."""
    exhaust("person")
    assert basic("person", HUMAN_PASSWORD) == 429
    assert token("person", HUMAN_PASSWORD).status_code == 429


def test_a_correct_generated_password_passes_a_lockout_and_reads_no_counter(
    machine: Account, memory_backend: object
) -> None:
    """Lego's machine account cannot be locked out by someone guessing at its name."""
    exhaust("machine")
    for address in range(PER_ADDRESS):
        assert basic(f"user{address}", "wrong-password", "192.0.2.9") in (401, 429)
    assert basic("machine", "wrong-password") == 429
    with CaptureQueriesContext(connection) as queries:
        assert basic("machine", machine.password, "192.0.2.9") == 200
    assert not [q for q in queries.captured_queries if "failedlogincounter" in q["sql"]]


def test_attempts_refused_by_a_lockout_run_no_slow_hash(
    person: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood against a locked-out name costs an indexed read per attempt, not a slow hash."""
    exhaust("person")
    slow = get_hasher("default")
    calls: list[str] = []
    real_encode = type(slow).encode

    def counting_encode(self: object, password: str, salt: str, *args: object) -> str:
        calls.append(password)
        return real_encode(self, password, salt, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(type(slow), "encode", counting_encode)
    for _ in range(20):
        assert basic("person", "wrong-password") == 429
    assert calls == []
    assert FailedLoginCounter.objects.get(key__startswith="user:").failures == PER_USERNAME


def test_one_address_is_locked_out_across_usernames_and_others_are_not(
    person: Account,
) -> None:
    for n in range(PER_ADDRESS):
        assert basic(f"guess{n}", "wrong-password", "198.51.100.7") == 401
    assert basic("person", HUMAN_PASSWORD, "198.51.100.7") == 429
    assert basic("guess-more", "wrong-password", "198.51.100.7") == 429
    assert token("person", HUMAN_PASSWORD, "198.51.100.8").status_code == 200


def test_the_lockout_ends_with_its_window(person: Account) -> None:
    exhaust("person")
    assert basic("person", HUMAN_PASSWORD) == 429
    FailedLoginCounter.objects.update(
        window_started=FailedLoginCounter.objects.get(key__startswith="user:").window_started
        - timedelta(seconds=WINDOW)
    )
    assert token("person", HUMAN_PASSWORD).status_code == 200
    assert basic("person", "wrong-password") == 401
    assert FailedLoginCounter.objects.get(key__startswith="user:").failures == 1


def test_each_lockout_is_logged_once_without_the_raw_input(
    person: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="api.throttle")
    exhaust("per\nson")
    for _ in range(3):
        basic("per\nson", "wrong-password")
    lockouts = [r.getMessage() for r in caplog.records if "login lockout" in r.getMessage()]
    assert len(lockouts) == 1
    expected = (
        rf"login lockout: {PER_USERNAME} failed logins for username 'per\\nson'; "
        r"refused for \d+ s"
    )
    assert re.fullmatch(expected, lockouts[0]), lockouts


def test_successful_logins_write_nothing(person: Account) -> None:
    assert token("person", HUMAN_PASSWORD).status_code == 200
    assert not FailedLoginCounter.objects.exists()


def test_a_limit_of_zero_disables_that_scope(person: Account) -> None:
    with override_settings(
        LOGIN_THROTTLE=LoginThrottleLimits(
            per_username=0, per_address=0, window_seconds=WINDOW, proxy_hops=0
        )
    ):
        for _ in range(PER_USERNAME + 2):
            assert basic("person", "wrong-password") == 401
    assert not FailedLoginCounter.objects.exists()


@pytest.mark.parametrize(
    ("meta", "hops", "expected"),
    [
        ({"REMOTE_ADDR": "192.0.2.1"}, 0, "192.0.2.1"),
        ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}, 0, "192.0.2.1"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}, 1, "203.0.113.5"),
        (
            {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5"},
            1,
            "203.0.113.5",
        ),
        (
            {"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.5, 10.0.0.2"},
            2,
            "203.0.113.5",
        ),
        ({"REMOTE_ADDR": "10.0.0.2"}, 1, "10.0.0.2"),
        ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, 0, "2001:db8:1:2::/64"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "not-an-address"}, 1, "10.0.0.2"),
        ({"REMOTE_ADDR": "::ffff:192.0.2.4"}, 0, "192.0.2.4"),
        ({"REMOTE_ADDR": "garbage"}, 0, None),
        ({}, 0, None),
    ],
)
def test_client_address_trusts_only_the_configured_proxies(
    meta: dict[str, str], hops: int, expected: str | None
) -> None:
    assert counted_address(meta, hops) == expected


def test_the_admin_login_form_still_logs_a_staff_user_in(db: None) -> None:
    user = save_account("root", HUMAN_PASSWORD, superuser=True).user
    client = Client(REMOTE_ADDR="192.0.2.1")
    response = client.post(
        "/admin/login/", {"username": "root", "password": HUMAN_PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").context["user"] == user
