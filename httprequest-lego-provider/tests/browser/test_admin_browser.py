"""The Django admin in headless Chromium: a staff member sets up a machine user, end to end.

The provider runs as deployed (gunicorn with gevent workers, ``webserver.json``, PostgreSQL,
the in-memory DNS backend), and Debian's Chromium is driven through Playwright (its driver
ships in the wheel; no browser is downloaded). A staff member who is not a superuser logs in,
adds the names, creates a machine user and reads its password shown once, grants two names,
revokes one, creates an acme-dns account and reads the audit trail. Each step is checked in
the database and over HTTP as lego would call (the shown password on ``/present``, the shown
key on ``/update``), and leaves a screenshot: in a temporary folder, or in the folder named by
``ADMIN_SCREENSHOTS_DIR`` (``scripts/admin-screenshots`` retakes docs/admin/ that way).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, expect, sync_playwright

from tests.processes import running
from tests.provider_server import ProviderServer, postgresql_database

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
MAX_SCREENSHOT_BYTES = 400_000
ENV = {"DJANGO_DNS_BACKEND": "memory", "DJANGO_MEMORY_ZONES": "example.com"}
VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
MACHINE = "lego-web"
KEPT, REVOKED = "www.example.com", "api.example.com"
# The operator: staff, not a superuser, with Django's permissions on users, grants and accounts.
MAKE_STAFF = """
from django.contrib.auth.models import Permission, User
user = User.objects.get(username="operator")
user.is_staff = True
user.save()
user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=("auth", "api")))
"""
# docs/admin.md shows these, in this order.
SCREENSHOTS = (
    "01-login",
    "02-index",
    "03-add-domain",
    "04-users",
    "05-add-machine-user",
    "06-password-shown-once",
    "07-grant-a-name",
    "08-grants",
    "09-revoke-confirm",
    "10-grant-revoked",
    "11-add-acmedns-account",
    "12-acmedns-account-file",
    "13-audit-trail",
)


class Walk:
    """The browser's one tab on the admin, the server behind it, and each step's screenshot."""

    def __init__(
        self, playwright: Playwright, server: ProviderServer, database: str, shots: Path
    ) -> None:
        self.playwright = playwright
        self.server = server
        self.database = database
        self.shots = shots
        self.taken: list[str] = []
        self.browser: Browser | None = None

    def start_browser(self) -> Page:
        """Debian's Chromium, headless; missing, the test fails saying how to install it."""
        if not CHROMIUM.is_file():
            pytest.fail(
                f"{CHROMIUM} is missing: run scripts/bootstrap (it installs Debian's chromium)",
                pytrace=False,
            )
        self.browser = self.playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--disable-dev-shm-usage"]
        )
        self.page = self.browser.new_page(viewport=VIEWPORT)
        return self.page

    def open(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def shot(self, name: str, *, full_page: bool = False) -> None:
        """Save the viewport (or the whole page) as ``<name>.png``, animations stopped."""
        self.page.screenshot(
            path=self.shots / f"{name}.png", animations="disabled", full_page=full_page
        )
        self.taken.append(name)

    def save(self) -> None:
        """Press the form's main button and wait for the next page's success message."""
        self.page.click("input[name=_save]")
        expect(self.page.locator(".messagelist .success")).to_be_visible()

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database) as connection:
            return connection.execute(sql, params).fetchall()

    def grants(self) -> list[tuple[str, str]]:
        rows = self.rows(
            "SELECT d.fqdn, p.access_level FROM api_domainuserpermission p"
            " JOIN api_domain d ON d.id = p.domain_id JOIN auth_user u ON u.id = p.user_id"
            " WHERE u.username = %s ORDER BY d.fqdn",
            MACHINE,
        )
        return [(str(fqdn), str(level)) for fqdn, level in rows]

    def present(self, name: str, password: str) -> int:
        """POST /present as lego's httpreq provider does; the status code."""
        body = {"fqdn": f"_acme-challenge.{name}.", "value": VALUE}
        response = requests.post(
            self.server.url + "/present", json=body, auth=(MACHINE, password), timeout=30
        )
        return response.status_code


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    """A fresh provider, and Playwright ready to start Chromium on it."""
    shots = Path(os.environ.get("ADMIN_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with postgresql_database() as database:
        server = ProviderServer(tmp_path / "provider", ENV, database_url=database)
        server.env["DJANGO_ACMEDNS_SERVER_URL"] = server.url
        with running(server), sync_playwright() as playwright:
            walk = Walk(playwright, server, database, shots)
            try:
                yield walk
            finally:
                if walk.browser is not None:
                    walk.browser.close()


def test_staff_set_up_a_machine_user_grant_revoke_acmedns_and_read_the_audit_trail(
    walk: Walk,
) -> None:
    page = walk.start_browser()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    operator_password = walk.server.create_user("operator")
    walk.server.manage("shell", "-c", MAKE_STAFF)

    # Log in.
    walk.open("/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", operator_password)
    walk.shot("01-login")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("operator")
    walk.shot("02-index")
    # The navigation sidebar folded away (Django keeps that choice in the browser's storage):
    # the lists, the audit trail's above all, get the whole width of the screenshots.
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")

    # The names a grant can refer to.
    for name in (KEPT, REVOKED):
        walk.open("/admin/api/domain/add/")
        page.fill("#id_fqdn", name)
        if name == KEPT:
            walk.shot("03-add-domain")
        walk.save()

    # A machine user; its password is on the next page, once.
    walk.open("/admin/auth/user/")
    walk.shot("04-users")
    page.click("#add-machine-user")
    page.fill("#id_username", MACHINE)
    walk.shot("05-add-machine-user")
    page.click("input[name=_save]")
    expect(page.locator("#shown-password")).to_be_visible()
    walk.shot("06-password-shown-once")
    password = page.inner_text("#shown-password").strip()
    [(user_id, stored, is_staff)] = walk.rows(
        "SELECT id, password, is_staff OR is_superuser FROM auth_user WHERE username = %s",
        MACHINE,
    )
    assert str(stored).startswith("generated_sha256$")  # the fast hasher
    assert is_staff is False
    assert walk.present(KEPT, password + "x") == 401
    assert walk.present(KEPT, password) == 403  # authenticated; no grant yet

    # Grant two names from the page's link (the user is filled in), then revoke one.
    page.click("#grant-a-name")
    expect(page).to_have_url(re.compile(rf"/admin/api/domainuserpermission/add/\?user={user_id}$"))
    grant_form = page.url
    for name in (KEPT, REVOKED):
        page.goto(grant_form)
        expect(page.locator("#id_user")).to_have_value(str(user_id))
        page.click(".field-domain .select2-selection")
        page.fill(".select2-search__field", name)
        page.click(f".select2-results__option:text-is('{name}')")
        page.select_option("#id_access_level", "domain")
        if name == KEPT:
            page.fill("#id_text", "the web servers' certificates")
            walk.shot("07-grant-a-name")
        walk.save()
    walk.shot("08-grants")
    assert walk.grants() == [(REVOKED, "domain"), (KEPT, "domain")]
    assert (walk.present(KEPT, password), walk.present(REVOKED, password)) == (200, 200)

    page.locator("#result_list tbody tr", has_text=REVOKED).locator("input.action-select").check()
    page.select_option("select[name=action]", "delete_selected")
    page.locator("#changelist-form button[name=index]").first.click()
    expect(page.locator("input[type=submit][value^='Yes']")).to_be_visible()
    walk.shot("09-revoke-confirm")
    page.click("input[type=submit][value^='Yes']")
    expect(page.locator(".messagelist .success")).to_be_visible()
    walk.shot("10-grant-revoked")
    assert walk.grants() == [(KEPT, "domain")]
    assert (walk.present(KEPT, password), walk.present(REVOKED, password)) == (200, 403)

    # An acme-dns account for the name it kept; the account file is shown once.
    walk.open("/admin/api/acmednsaccount/")
    page.click(".object-tools .addlink")
    page.select_option("#id_user", label=MACHINE)
    page.fill("#id_domain", KEPT)
    walk.shot("11-add-acmedns-account")
    page.click("input[name=_save]")
    expect(page.locator("#shown-account-file")).to_be_visible()
    walk.shot("12-acmedns-account-file")
    entry = json.loads(page.inner_text("#shown-account-file"))[KEPT]
    assert entry["server_url"] == walk.server.url
    [(fulldomain, key_hash)] = walk.rows(
        "SELECT a.fulldomain, a.key_hash FROM api_acmednsaccount a"
        " JOIN auth_user u ON u.id = a.user_id WHERE u.username = %s",
        MACHINE,
    )
    assert fulldomain == entry["fulldomain"] == f"_acme-challenge.{KEPT}"
    assert str(key_hash).startswith("generated_sha256$")  # the key, hashed like the password
    update = requests.post(
        walk.server.url + "/update",
        json={"subdomain": entry["subdomain"], "txt": VALUE},
        headers={"X-Api-User": entry["username"], "X-Api-Key": entry["password"]},
        timeout=30,
    )
    assert update.status_code == 200, update.text

    # The audit trail lists what was just done, and by whom.
    walk.open("/admin/api/auditevent/")
    page.fill("#searchbar", MACHINE)
    page.press("#searchbar", "Enter")
    expect(page).to_have_url(re.compile(rf"\?q={MACHINE}$"))
    expect(page.locator("#result_list")).to_be_visible()
    walk.shot("13-audit-trail", full_page=True)
    listed = page.locator("#result_list tbody tr")
    for action, name in [
        ("Create an account", MACHINE),
        ("Grant a name", KEPT),
        ("Grant a name", REVOKED),
        ("Revoke a grant", REVOKED),
        ("Create an acme-dns account", f"_acme-challenge.{KEPT}"),
        ("Present a TXT value", f"_acme-challenge.{KEPT}"),
    ]:
        expect(listed.filter(has_text=action).filter(has_text=name).first).to_be_visible()
    by_operator = walk.rows(
        "SELECT action, name FROM api_auditevent"
        " WHERE actor = 'operator' AND via = 'admin' AND result = 'ok'"
    )
    assert {
        ("account-create", MACHINE),
        ("grant", KEPT),
        ("grant", REVOKED),
        ("revoke", REVOKED),
        ("acmedns-create", f"_acme-challenge.{KEPT}"),
    } <= set(by_operator)

    # Nothing showed the secrets again or wrote them down.
    walk.open(f"/admin/auth/user/{user_id}/change/")
    assert password not in page.content()
    log = walk.server.process.log_file.read_text(errors="replace")
    assert password not in log
    assert entry["password"] not in log
    assert errors == []
    assert walk.taken == list(SCREENSHOTS)
    for name in SCREENSHOTS:
        png = (walk.shots / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) < MAX_SCREENSHOT_BYTES, name
