"""Which grants cover which names: the boundary cases."""

from __future__ import annotations

import pytest
from api.permissions import may_manage

from tests.conftest import make_account

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("domains", "subdomains", "name", "allowed"),
    [
        ("example.com", "", "example.com", True),
        ("example.com", "", "badexample.com", False),
        ("example.com", "", "www.example.com", False),  # a domain grant does not cover children
        ("", "example.com", "www.example.com", True),
        ("", "example.com", "a.b.example.com", True),
        ("", "example.com", "example.com", False),  # a subdomain grant does not cover the apex
        ("", "example.com", "wwwexample.com", False),
        ("", "example.com", "www.badexample.com", False),
        ("", "example.com", "example.com.evil.net", False),
        ("www.example.com", "", "example.com", False),  # nor does a child grant cover parents
        ("", "www.example.com", "example.com", False),
        ("example.com", "example.com", "example.com", True),
        ("example.com", "example.com", "x.example.com", True),
        ("", "co.uk", "example.co.uk", True),
        ("", "", "example.com", False),
    ],
)
def test_may_manage_follows_the_grant_boundaries(
    domains: str, subdomains: str, name: str, allowed: bool
) -> None:
    account = make_account("someone", domains=domains, subdomains=subdomains)
    assert may_manage(account.user, name) is allowed


def test_grants_of_another_user_do_not_count() -> None:
    make_account("owner", domains="example.com")
    other = make_account("other")
    assert may_manage(other.user, "example.com") is False


def test_inactive_users_may_manage_nothing() -> None:
    account = make_account("gone", domains="example.com")
    account.user.is_active = False
    assert may_manage(account.user, "example.com") is False
