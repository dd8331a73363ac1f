"""What the Django admin tests share: a staff account and a browser-like client logged in."""

from __future__ import annotations

import html
import re
from typing import Protocol

from django.contrib.auth.models import Permission
from django.test import Client

from tests.conftest import Account, make_account


class Page(Protocol):
    """What the test client answers: the body is what a browser would show."""

    @property
    def content(self) -> bytes: ...


def make_staff(username: str = "operator") -> Account:
    """A staff account (not a superuser) holding Django's permissions on users and grants."""
    account = make_account(username)
    account.user.is_staff = True
    account.user.save()
    account.user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=("auth", "api"))
    )
    return account


def logged_in(account: Account) -> Client:
    """A test client holding a session of ``account``, as a browser after the login page."""
    client = Client()
    client.force_login(account.user)
    return client


def shown(page: Page, element_id: str) -> str:
    """The text of the element with ``element_id`` (a shown-once secret), unescaped."""
    content = page.content.decode()
    match = re.search(rf'<(code|pre) id="{element_id}"[^>]*>(.*?)</\1>', content, re.DOTALL)
    assert match is not None, f"no #{element_id} in the page:\n{content}"
    return html.unescape(match.group(2))
