"""The production settings behind a TLS-terminating ingress, checked by Django's deploy check.

Each test starts a fresh Python with only the variables the charm sets (``DJANGO_DEBUG`` off),
so the settings module computes its values from the environment as in production.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.provider_server import PROJECT_DIR

INGRESS_URL = "https://lego.example/"
IN_CLUSTER_URL = "http://httprequest-lego-provider.lego:8000"

# Requests through Django's test client with the production settings; prints what came back.
PROBE = """
import json, os
import django
django.setup()
from django.test import Client
client = Client()
out = {}
def record(name, response):
    out[name] = {
        "status": response.status_code,
        "location": response.get("Location"),
        "hsts": response.get("Strict-Transport-Security"),
        "secure_cookies": sorted(k for k, v in response.cookies.items() if v["secure"]),
        "cookies": sorted(response.cookies),
    }
host = "lego.example"
record("present over http", client.post("/present", {}, headers={"host": host}))
record("token over http", client.post("/api/v1/auth/token/", {}, headers={"host": host}))
record("admin over http", client.get("/admin/login/", headers={"host": host}))
record(
    "admin over https",
    client.get("/admin/login/", headers={"host": host, "x-forwarded-proto": "https"}),
)
print(json.dumps(out))
"""


def production_env(tmp_path: Path, base_url: str | None) -> dict[str, str]:
    """What the charm gives the workload, with an ingress (https) or without one (http)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": '["lego.example", "httprequest-lego-provider.lego"]',
        "DJANGO_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "httprequest_lego_provider.settings",
    }
    if base_url is not None:
        env["DJANGO_BASE_URL"] = base_url
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_deploy_check_passes_on_the_production_settings_behind_the_ingress(
    tmp_path: Path,
) -> None:
    """Before: W004 (HSTS), W008 (SSL redirect), W012 and W016 (insecure cookies)."""
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(tmp_path, INGRESS_URL),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def probe(tmp_path: Path, base_url: str | None) -> dict[str, dict[str, object]]:
    result = run(["-c", PROBE], production_env(tmp_path, base_url))
    assert result.returncode == 0, result.stderr
    answers: dict[str, dict[str, object]] = json.loads(result.stdout.splitlines()[-1])
    return answers


def test_behind_the_ingress_machine_endpoints_are_never_redirected(tmp_path: Path) -> None:
    """A lego inside the cluster posts to plain http://<app>.<model>:8000: no redirect for it."""
    answers = probe(tmp_path, INGRESS_URL)
    assert answers["present over http"]["status"] == 401
    assert answers["token over http"]["status"] == 400


def test_behind_the_ingress_the_admin_is_sent_to_https_with_hsts_and_secure_cookies(
    tmp_path: Path,
) -> None:
    answers = probe(tmp_path, INGRESS_URL)
    assert answers["admin over http"]["status"] == 301
    assert answers["admin over http"]["location"] == "https://lego.example/admin/login/"
    https = answers["admin over https"]
    assert https["status"] == 200
    assert https["hsts"] == "max-age=31536000; includeSubDomains"
    assert https["secure_cookies"] == ["csrftoken"]


@pytest.mark.parametrize("base_url", [IN_CLUSTER_URL, None])
def test_without_an_ingress_the_plain_http_admin_keeps_working(
    tmp_path: Path, base_url: str | None
) -> None:
    """The charm's base URL without an ingress is plain HTTP: no redirect, cookies sent on it.

    So is a start without DJANGO_BASE_URL (a local run); ``check --deploy`` rightly warns there.
    """
    answers = probe(tmp_path, base_url)
    plain = answers["admin over http"]
    assert plain["status"] == 200
    assert plain["cookies"] == ["csrftoken"]
    assert plain["secure_cookies"] == []
    assert answers["present over http"]["status"] == 401


def test_hsts_is_configurable(tmp_path: Path) -> None:
    env = production_env(tmp_path, INGRESS_URL) | {
        "DJANGO_HSTS_SECONDS": "600",
        "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "false",
        "DJANGO_HSTS_PRELOAD": "true",
    }
    result = run(["-c", PROBE], env)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.splitlines()[-1])
    assert answers["admin over https"]["hsts"] == "max-age=600; preload"
