"""The Django admin's "Add machine user": a generated password (the fast hasher), shown once.

Against the real PostgreSQL, the service's middleware and the in-memory backend.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from api import admin_credentials
from api.grants import allow
from api.hashers import ALGORITHM, GeneratedTokenHasher
from api.models import AuditEvent
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from dns_backends.memory import MemoryBackend
from rest_framework.test import APIClient

from tests.admin_helpers import logged_in, make_staff, shown
from tests.conftest import Account, make_account

pytestmark = pytest.mark.django_db

ADD = "/admin/auth/user/add-machine/"
VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
NAME = "_acme-challenge.www.example.com"


@pytest.fixture
def operator(db: None) -> Account:
    return make_staff()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every line logged meanwhile, at any level, by any logger (the audit one included)."""
    handler = _Collect()
    loggers = [logging.getLogger(), logging.getLogger("audit")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler.lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_machine_user_gets_a_generated_password_shown_once_on_the_next_page(
    operator: Account,
) -> None:
    client = logged_in(operator)
    form = client.get(ADD)
    assert form.status_code == 200
    assert b'name="username"' in form.content
    assert b'name="password1"' not in form.content
    page = client.post(ADD, {"username": "lego-web"})
    assert page.status_code == 200
    password = shown(page, "shown-password")
    assert len(password) == 43  # generate_password(): 32 random bytes, URL-safe base64
    assert f"HTTPREQ_PASSWORD={password}" in shown(page, "shown-lego-environment")
    user = User.objects.get(username="lego-web")
    assert user.password.startswith(f"{ALGORITHM}$")  # the fast hasher, not PBKDF2
    assert GeneratedTokenHasher().verify(password, user.password)
    for later in (f"/admin/auth/user/{user.pk}/change/", "/admin/auth/user/", ADD):
        again = client.get(later)
        assert again.status_code == 200
        assert password.encode() not in again.content
    reposted = client.post(ADD, {"username": "lego-web"})  # a reload of the page re-posts
    assert reposted.status_code == 200
    assert b"already exists" in reposted.content
    assert b"shown-password" not in reposted.content
    assert User.objects.get(pk=user.pk).password == user.password


def test_the_shown_password_authenticates_lego_on_present(
    operator: Account, memory_backend: MemoryBackend
) -> None:
    page = logged_in(operator).post(ADD, {"username": "lego-web"})
    password = shown(page, "shown-password")
    allow("lego-web", ["www.example.com"], [])
    body = {"fqdn": NAME + ".", "value": VALUE}
    wrong = APIClient().post(
        "/present", body, format="json", HTTP_AUTHORIZATION=basic("lego-web", password[::-1])
    )
    assert wrong.status_code == 401
    right = APIClient().post(
        "/present", body, format="json", HTTP_AUTHORIZATION=basic("lego-web", password)
    )
    assert right.status_code == 200, right.content
    assert memory_backend.values(NAME) == {VALUE}


def test_the_page_with_the_password_tells_every_cache_not_to_store_it(operator: Account) -> None:
    page = logged_in(operator).post(ADD, {"username": "lego-web"})
    assert page.status_code == 200
    directives = {part.strip() for part in page["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives


@pytest.mark.parametrize("actor", ["staff", "superuser"])
def test_the_machine_user_page_never_makes_a_staff_or_superuser_account(
    operator: Account, admin_account: Account, actor: str
) -> None:
    """Only a superuser makes staff, on the user's own page; this page makes machine users."""
    client = logged_in(operator if actor == "staff" else admin_account)
    page = client.post(ADD, {"username": "lego-web", "is_staff": "on", "is_superuser": "on"})
    assert page.status_code == 200
    user = User.objects.get(username="lego-web")
    assert (user.is_staff, user.is_superuser, user.is_active) == (False, False, True)
    assert not user.user_permissions.exists()


def test_staff_without_the_permission_to_add_and_change_users_get_403(
    operator: Account,
) -> None:
    operator.user.user_permissions.set(Permission.objects.filter(codename="view_user"))
    client = logged_in(operator)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"username": "lego-web"}).status_code == 403
    assert not User.objects.filter(username="lego-web").exists()


def test_a_user_who_is_not_staff_is_sent_to_the_login(machine: Account) -> None:
    response = logged_in(machine).post(ADD, {"username": "lego-web"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not User.objects.filter(username="lego-web").exists()


def test_the_password_is_in_no_log_line_session_or_stored_row(
    operator: Account, log_lines: list[str]
) -> None:
    client = logged_in(operator)
    password = shown(client.post(ADD, {"username": "lego-web"}), "shown-password")
    assert any('"account-create"' in line for line in log_lines), log_lines  # logging works
    assert not [line for line in log_lines if password in line]
    stored = [
        *(session.get_decoded() for session in Session.objects.all()),
        *LogEntry.objects.values_list("object_repr", "change_message"),
        *AuditEvent.objects.values_list("name", "subject", "reason", "value_digest"),
        *User.objects.values_list("username", "password"),
    ]
    assert password not in repr(stored)


def test_creating_a_machine_user_is_audited_and_logged_as_the_staff_member(
    operator: Account,
) -> None:
    client = logged_in(operator)
    client.post(ADD, {"username": "lego-web"}, REMOTE_ADDR="192.0.2.7")
    event = AuditEvent.objects.get(action="account-create", name="lego-web")
    assert (event.actor, event.via, event.subject, event.result) == (
        "operator",
        "admin",
        "lego-web",
        "ok",
    )
    assert event.client_address == "192.0.2.7"
    entry = LogEntry.objects.get(object_repr="lego-web")
    assert (entry.user_id, entry.is_addition()) == (operator.user.pk, True)


@pytest.mark.parametrize("taken", ["robot", "ROBOT"])
def test_a_taken_username_is_refused_and_that_account_keeps_its_password(
    operator: Account, taken: str
) -> None:
    robot = make_account("robot")
    page = logged_in(operator).post(ADD, {"username": taken})
    assert page.status_code == 200
    assert b"already exists" in page.content
    assert b"shown-password" not in page.content
    assert User.objects.filter(username__iexact="robot").count() == 1
    assert User.objects.get(pk=robot.user.pk).password == robot.user.password


def test_a_username_taken_between_the_check_and_the_save_is_refused_on_the_form(
    operator: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request creates the same name right after this form checked it."""
    checked = admin_credentials.MachineUserForm.validate_unique

    def then_another_request_creates_it(form: admin_credentials.MachineUserForm) -> None:
        checked(form)
        User.objects.create(username=form.cleaned_data["username"])

    monkeypatch.setattr(
        admin_credentials.MachineUserForm, "validate_unique", then_another_request_creates_it
    )
    page = logged_in(operator).post(ADD, {"username": "lego-web"})
    assert page.status_code == 200
    assert b"already exists" in page.content
    assert b"shown-password" not in page.content
    assert User.objects.get(username="lego-web").password == ""  # the other one's, untouched


def test_the_user_list_and_the_add_user_form_lead_to_the_machine_user_page(
    operator: Account,
) -> None:
    client = logged_in(operator)
    for page in ("/admin/auth/user/", "/admin/auth/user/add/"):
        response = client.get(page)
        assert response.status_code == 200
        assert f'href="{ADD}"'.encode() in response.content
