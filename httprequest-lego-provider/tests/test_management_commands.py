"""The management commands the charm's actions run."""

from __future__ import annotations

from io import StringIO

import pytest
from api.hashers import is_generated_password_hash
from api.models import AccessLevel, DomainUserPermission
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_user_with_a_password_stores_it_with_the_slow_hasher() -> None:
    assert run("create_user", "alice", "correct-horse-battery-staple") == "created user alice\n"
    user = User.objects.get(username="alice")
    assert not is_generated_password_hash(user.password)
    assert authenticate(username="alice", password="correct-horse-battery-staple") == user


def test_create_user_without_a_password_generates_and_prints_one() -> None:
    out = run("create_user", "machine1")
    lines = out.splitlines()
    assert lines[0] == "created user machine1"
    password = lines[1].removeprefix("password: ")
    assert len(password) == 43
    user = User.objects.get(username="machine1")
    assert is_generated_password_hash(user.password)
    assert authenticate(username="machine1", password=password) == user


def test_create_user_again_sets_a_new_password() -> None:
    run("create_user", "bob", "first-password-is-long")
    assert run("create_user", "bob", "second-password-is-long") == "updated user bob\n"
    assert authenticate(username="bob", password="first-password-is-long") is None
    assert authenticate(username="bob", password="second-password-is-long") is not None


def test_create_user_refuses_a_weak_password() -> None:
    with pytest.raises(CommandError, match="too common"):
        run("create_user", "carol", "password")


def test_create_superuser_needs_no_terminal_and_prints_the_password() -> None:
    out = run("create_superuser", "root", "--email", "root@example.com")
    assert out.startswith("created superuser root\npassword: ")
    user = User.objects.get(username="root")
    assert user.is_superuser
    assert user.is_staff
    assert user.email == "root@example.com"


def test_allow_domains_grants_domains_and_subdomains() -> None:
    run("create_user", "dave")
    out = run(
        "allow_domains",
        "dave",
        "--domains",
        "www.example.com,Example.ORG.",
        "--subdomains",
        "example.net",
    )
    assert out.splitlines() == [
        "allowed dave domain www.example.com",
        "allowed dave domain example.org",
        "allowed dave subdomain example.net",
    ]
    grants = {
        (p.domain.fqdn, p.access_level)
        for p in DomainUserPermission.objects.filter(user__username="dave")
    }
    assert grants == {
        ("www.example.com", AccessLevel.DOMAIN),
        ("example.org", AccessLevel.DOMAIN),
        ("example.net", AccessLevel.SUBDOMAIN),
    }


def test_allow_domains_twice_changes_nothing() -> None:
    run("create_user", "erin")
    run("allow_domains", "erin", "--domains", "example.com")
    assert run("allow_domains", "erin", "--domains", "example.com") == "nothing to change\n"
    assert DomainUserPermission.objects.filter(user__username="erin").count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["allow_domains", "nobody", "--domains", "example.com"], "no user named 'nobody'"),
        (["allow_domains", "frank"], "give --domains and/or --subdomains"),
        (["allow_domains", "frank", "--domains", "bad name.com"], "must be a domain name"),
        (["allow_domains", "frank", "--domains", 'x".com'], "must be a domain name"),
        (["revoke_domains", "frank"], "give --domains and/or --subdomains"),
        (["list_domains", "nobody"], "no user named 'nobody'"),
    ],
)
def test_grant_commands_fail_with_a_message(args: list[str], message: str) -> None:
    run("create_user", "frank")
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_revoke_domains_removes_only_the_named_grants() -> None:
    run("create_user", "gina")
    run(
        "allow_domains",
        "gina",
        "--domains",
        "example.com,example.org",
        "--subdomains",
        "example.com",
    )
    out = run("revoke_domains", "gina", "--domains", "example.com", "--subdomains", "example.net")
    assert out == "revoked gina domain example.com\n"
    assert run("list_domains", "gina").splitlines() == [
        "gina subdomain example.com",
        "gina domain example.org",
    ]


def test_list_domains_with_star_lists_every_user() -> None:
    run("create_user", "hank")
    run("create_user", "ivy")
    run("allow_domains", "hank", "--domains", "a.example.com")
    run("allow_domains", "ivy", "--subdomains", "b.example.com")
    assert run("list_domains", "*").splitlines() == [
        "hank domain a.example.com",
        "ivy subdomain b.example.com",
    ]


def test_create_user_accepts_a_password_starting_with_a_dash_after_double_dash() -> None:
    assert run("create_user", "jade", "--", "-starts-with-a-dash-") == "created user jade\n"
    assert authenticate(username="jade", password="-starts-with-a-dash-") is not None


def test_unlock_login_lifts_a_username_and_an_address_lockout() -> None:
    from api.models import FailedLoginCounter
    from django.test.utils import override_settings
    from httprequest_lego_provider.environment import LoginThrottleLimits
    from rest_framework.test import APIClient

    run("create_user", "kim", "correct-horse-battery-staple")
    limits = LoginThrottleLimits(per_username=2, per_address=2, window_seconds=600, proxy_hops=0)

    def token(password: str) -> int:
        client = APIClient(REMOTE_ADDR="2001:db8::7")
        body = {"username": "kim", "password": password}
        return int(client.post("/api/v1/auth/token/", body, format="json").status_code)

    with override_settings(LOGIN_THROTTLE=limits):
        assert [token("wrong"), token("wrong"), token("correct-horse-battery-staple")] == [
            401,
            401,
            429,
        ]
        out = run("unlock_login", "--username", "kim", "--address", "2001:db8::1")
        assert out == "unlocked (2 counters removed)\n"
        assert token("correct-horse-battery-staple") == 200
    assert not FailedLoginCounter.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["unlock_login"], "give --username and/or --address"),
        (["unlock_login", "--address", "not-an-ip"], "is not an IP address"),
    ],
)
def test_unlock_login_fails_with_a_message(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
