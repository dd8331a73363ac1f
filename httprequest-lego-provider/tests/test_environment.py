"""Reading the provider's configuration from the environment."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from httprequest_lego_provider.environment import ProviderEnvironment

from tests.provider_server import PROJECT_DIR


def test_production_settings_come_from_the_documented_variables() -> None:
    env = ProviderEnvironment.from_env(
        {
            "DJANGO_SECRET_KEY": "s3cret",
            "DJANGO_ALLOWED_HOSTS": '["lego.example.com", "10.0.0.1"]',
            "DJANGO_LOG_LEVEL": "warning",
            "POSTGRESQL_DB_CONNECT_STRING": "postgresql://u:p@127.0.0.1:5432/db",
            "DJANGO_DNS_BACKEND": "rfc2136",
        }
    )
    assert env.secret_key == "s3cret"
    assert env.debug is False
    assert env.allowed_hosts == ["lego.example.com", "10.0.0.1"]
    assert env.log_level == "WARNING"
    assert env.database_url == "postgresql://u:p@127.0.0.1:5432/db"
    assert env.dns_backend == "rfc2136"


def test_debug_without_a_secret_key_generates_one_and_allows_loopback() -> None:
    env = ProviderEnvironment.from_env({"DJANGO_DEBUG": "true"})
    assert len(env.secret_key) > 40
    assert "127.0.0.1" in env.allowed_hosts


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "DJANGO_SECRET_KEY is not set"),
        (
            {"DJANGO_SECRET_KEY": "k", "DJANGO_DEBUG": "maybe"},
            "DJANGO_DEBUG must be true or false",
        ),
        (
            {"DJANGO_SECRET_KEY": "k", "DJANGO_ALLOWED_HOSTS": "a.com"},
            "DJANGO_ALLOWED_HOSTS must be",
        ),
        (
            {"DJANGO_SECRET_KEY": "k", "DJANGO_ALLOWED_HOSTS": "[1]"},
            "DJANGO_ALLOWED_HOSTS must be",
        ),
        (
            {"DJANGO_SECRET_KEY": "k", "DJANGO_LOG_LEVEL": "LOUD"},
            "DJANGO_LOG_LEVEL must be one of",
        ),
        (
            {"DJANGO_SECRET_KEY": "k", "POSTGRESQL_DB_CONNECT_STRING": "mysql://x"},
            "POSTGRESQL_DB_CONNECT_STRING must be a postgresql:// URL",
        ),
        ({"DJANGO_SECRET_KEY": "k", "DJANGO_BASE_URL": "lego.example"}, "DJANGO_BASE_URL must be"),
        ({"DJANGO_SECRET_KEY": "k", "DJANGO_BASE_URL": "ftp://x/"}, "DJANGO_BASE_URL must be"),
        ({"DJANGO_SECRET_KEY": "k", "DJANGO_HSTS_SECONDS": "-1"}, "DJANGO_HSTS_SECONDS must be"),
        ({"DJANGO_SECRET_KEY": "k", "DJANGO_HSTS_PRELOAD": "?"}, "DJANGO_HSTS_PRELOAD must be"),
        (
            {"DJANGO_SECRET_KEY": "k", "DJANGO_LOGIN_FAILURES_PER_USERNAME": "ten"},
            "DJANGO_LOGIN_FAILURES_PER_USERNAME must be a whole number",
        ),
        (
            {"DJANGO_SECRET_KEY": "k", "DJANGO_LOGIN_FAILURE_WINDOW": "0"},
            "DJANGO_LOGIN_FAILURE_WINDOW must be a whole number of at least 1",
        ),
        ({"DJANGO_SECRET_KEY": "k", "DJANGO_PROXY_HOPS": "1.5"}, "DJANGO_PROXY_HOPS must be"),
    ],
)
def test_bad_values_stop_the_start_naming_the_variable(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        ProviderEnvironment.from_env(environ)


def test_an_unknown_backend_stops_the_wsgi_start_with_a_message(tmp_path: object) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SECRET_KEY": "k",
        "DJANGO_DNS_BACKEND": "carrier-pigeon",
        "DJANGO_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", "import httprequest_lego_provider.wsgi"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_DNS_BACKEND='carrier-pigeon' is not a known backend" in result.stderr


@pytest.mark.parametrize(
    ("base_url", "https", "origin", "host"),
    [
        ("https://lego.example/", True, "https://lego.example", "lego.example"),
        (
            "https://lego.example:8443/lego/",
            True,
            "https://lego.example:8443",
            "lego.example:8443",
        ),
        (
            "http://httprequest-lego-provider.lego:8000",
            False,
            "http://httprequest-lego-provider.lego:8000",
            "httprequest-lego-provider.lego:8000",
        ),
        (None, False, None, None),
    ],
)
def test_the_base_url_decides_https_and_the_trusted_origin(
    base_url: str | None, https: bool, origin: str | None, host: str | None
) -> None:
    environ = {"DJANGO_SECRET_KEY": "k"} | ({"DJANGO_BASE_URL": base_url} if base_url else {})
    env = ProviderEnvironment.from_env(environ)
    assert (env.https, env.public_origin, env.public_host) == (https, origin, host)


def test_login_throttle_limits_have_defaults_and_come_from_the_environment() -> None:
    defaults = ProviderEnvironment.from_env({"DJANGO_SECRET_KEY": "k"}).login_throttle
    assert (defaults.per_username, defaults.per_address, defaults.window_seconds) == (10, 50, 900)
    assert defaults.proxy_hops == 0
    configured = ProviderEnvironment.from_env(
        {
            "DJANGO_SECRET_KEY": "k",
            "DJANGO_LOGIN_FAILURES_PER_USERNAME": "3",
            "DJANGO_LOGIN_FAILURES_PER_ADDRESS": "0",
            "DJANGO_LOGIN_FAILURE_WINDOW": "60",
            "DJANGO_PROXY_HOPS": "1",
        }
    ).login_throttle
    assert (configured.per_username, configured.per_address) == (3, 0)
    assert (configured.window_seconds, configured.proxy_hops) == (60, 1)
