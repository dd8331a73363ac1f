"""Configuration from the environment: defaults, validation, and a refused start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from webhook_router.errors import ConfigError
from webhook_router.settings import (
    DEFAULT_DEDUP_WINDOW_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_METRICS_PORT,
    DEFAULT_PUBLISH_TIMEOUT_SECONDS,
    Settings,
)

ROOT = Path(__file__).parent.parent
MINIMAL = {"FLASK_FLAVOURS": "- small: [x64]\n- large: [x64, large]", "FLASK_WEBHOOK_SECRET": "s"}


def test_from_env_applies_documented_defaults() -> None:
    settings = Settings.from_env(MINIMAL)
    assert settings.routing.default_flavour == "small"
    assert settings.routing.default_labels == frozenset({"self-hosted", "linux"})
    assert settings.webhook_secrets == (b"s",)
    assert settings.allow_unsigned is False
    assert settings.lifecycle_events is False
    assert settings.allowed_repositories == frozenset()
    assert settings.allowed_networks == ()
    assert settings.client_address_header is None
    assert settings.trusted_proxies == ()
    assert settings.broker_url is None
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert settings.dedup_window_seconds == DEFAULT_DEDUP_WINDOW_SECONDS
    assert settings.publish_timeout_seconds == DEFAULT_PUBLISH_TIMEOUT_SECONDS
    assert settings.metrics_port == DEFAULT_METRICS_PORT


def test_from_env_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            **MINIMAL,
            "FLASK_DEFAULT_FLAVOUR": "large",
            "FLASK_DEFAULT_SELF_HOSTED_LABELS": "self-hosted, X64",
            "FLASK_WEBHOOK_SECRET": " secret with spaces ",
            "FLASK_LOG_LEVEL": "debug",
            "MONGODB_DB_CONNECT_STRING": "mongodb://u:p@127.0.0.1:27017,127.0.0.2:27017/db",
            "FLASK_STATE_DIR": "/var/lib/router",
            "FLASK_MAX_BODY_BYTES": "2048",
            "FLASK_DEDUP_WINDOW_SECONDS": "0",
            "FLASK_DEDUP_URL": "redis://127.0.0.1:6379/3",
            "FLASK_PUBLISH_TIMEOUT_SECONDS": "2.5",
            "FLASK_METRICS_PORT": "9200",
            "FLASK_METRICS_ADDRESS": "127.0.0.1",
            "FLASK_LIFECYCLE_EVENTS": "TRUE",
            "FLASK_ALLOWED_REPOSITORIES": "Octo-Org, me/Repo.one\nother",
            "FLASK_ALLOWED_NETWORKS": "192.30.252.0/22,185.199.108.0/22 2a0a:a440::/29",
            "FLASK_CLIENT_ADDRESS_HEADER": "X-Forwarded-For",
            "FLASK_TRUSTED_PROXIES": "10.0.0.0/8",
        }
    )
    assert settings.routing.default_flavour == "large"
    assert settings.routing.default_labels == frozenset({"self-hosted", "x64"})
    assert settings.webhook_secrets == (b" secret with spaces ",)
    assert settings.lifecycle_events is True
    assert settings.allowed_repositories == frozenset({"octo-org", "me/repo.one", "other"})
    assert [str(network) for network in settings.allowed_networks] == [
        "192.30.252.0/22",
        "185.199.108.0/22",
        "2a0a:a440::/29",
    ]
    assert settings.client_address_header == "X-Forwarded-For"
    assert [str(network) for network in settings.trusted_proxies] == ["10.0.0.0/8"]
    assert settings.log_level == "DEBUG"
    assert settings.broker_url == "mongodb://u:p@127.0.0.1:27017,127.0.0.2:27017/db"
    assert settings.state_dir == Path("/var/lib/router")
    assert settings.max_body_bytes == 2048
    assert settings.dedup_window_seconds == 0
    assert settings.dedup_url == "redis://127.0.0.1:6379/3"
    assert settings.publish_timeout_seconds == 2.5
    assert settings.metrics_port == 9200
    assert settings.metrics_address == "127.0.0.1"


def test_from_env_treats_empty_values_as_unset() -> None:
    settings = Settings.from_env(
        {**MINIMAL, "MONGODB_DB_CONNECT_STRING": "", "FLASK_LOG_LEVEL": ""}
    )
    assert settings.broker_url is None
    assert settings.log_level == "INFO"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "FLASK_FLAVOURS"),
        ({"FLASK_FLAVOURS": "- a: [x]\n- a: [y]"}, "FLASK_FLAVOURS"),
        ({"FLASK_DEFAULT_FLAVOUR": "medium"}, "FLASK_DEFAULT_FLAVOUR"),
        ({"FLASK_LOG_LEVEL": "LOUD"}, "FLASK_LOG_LEVEL"),
        ({"MONGODB_DB_CONNECT_STRING": "postgresql://127.0.0.1/db"}, "MONGODB_DB_CONNECT_STRING"),
        ({"MONGODB_DB_CONNECT_STRING": "127.0.0.1:27017"}, "MONGODB_DB_CONNECT_STRING"),
        ({"FLASK_MAX_BODY_BYTES": "lots"}, "FLASK_MAX_BODY_BYTES"),
        ({"FLASK_MAX_BODY_BYTES": "100"}, "FLASK_MAX_BODY_BYTES"),
        ({"FLASK_MAX_BODY_BYTES": str(26 * 1024 * 1024)}, "FLASK_MAX_BODY_BYTES"),
        ({"FLASK_DEDUP_WINDOW_SECONDS": "-1"}, "FLASK_DEDUP_WINDOW_SECONDS"),
        ({"FLASK_DEDUP_URL": "memcached://127.0.0.1"}, "FLASK_DEDUP_URL"),
        ({"FLASK_PUBLISH_TIMEOUT_SECONDS": "soon"}, "FLASK_PUBLISH_TIMEOUT_SECONDS"),
        ({"FLASK_PUBLISH_TIMEOUT_SECONDS": "12"}, "FLASK_PUBLISH_TIMEOUT_SECONDS"),
        ({"FLASK_PUBLISH_TIMEOUT_SECONDS": "0"}, "FLASK_PUBLISH_TIMEOUT_SECONDS"),
        ({"FLASK_METRICS_PORT": "70000"}, "FLASK_METRICS_PORT"),
        ({"FLASK_WEBHOOK_SECRET": ""}, "FLASK_WEBHOOK_SECRET"),
        ({"FLASK_WEBHOOK_SECRET": "\n\n"}, "FLASK_WEBHOOK_SECRET"),
        ({"FLASK_WEBHOOK_SECRET": "\n".join("abcdef")}, "FLASK_WEBHOOK_SECRET"),
        (
            {"FLASK_WEBHOOK_SECRET": "", "FLASK_ALLOW_UNSIGNED_WEBHOOKS": "yes"},
            "FLASK_ALLOW_UNSIGNED_WEBHOOKS",
        ),
        ({"FLASK_LIFECYCLE_EVENTS": "on"}, "FLASK_LIFECYCLE_EVENTS"),
        (
            {"FLASK_FLAVOURS": "- a: [x]\n- a.events: [y]", "FLASK_LIFECYCLE_EVENTS": "true"},
            "FLASK_FLAVOURS",
        ),
        ({"FLASK_ALLOWED_REPOSITORIES": "owner/repo/extra"}, "FLASK_ALLOWED_REPOSITORIES"),
        ({"FLASK_ALLOWED_REPOSITORIES": "bad owner!"}, "FLASK_ALLOWED_REPOSITORIES"),
        ({"FLASK_ALLOWED_NETWORKS": "192.30.252.1/22"}, "FLASK_ALLOWED_NETWORKS"),
        ({"FLASK_ALLOWED_NETWORKS": "github"}, "FLASK_ALLOWED_NETWORKS"),
        ({"FLASK_TRUSTED_PROXIES": "10.0.0.0/33"}, "FLASK_TRUSTED_PROXIES"),
        ({"FLASK_CLIENT_ADDRESS_HEADER": "X Forwarded: For"}, "FLASK_CLIENT_ADDRESS_HEADER"),
        ({"MONGODB_DB_CONNECT_STRING": "filesystem://"}, "MONGODB_DB_CONNECT_STRING"),
        ({"MONGODB_DB_CONNECT_STRING": "filesystem:///var/queues"}, "MONGODB_DB_CONNECT_STRING"),
        ({"MONGODB_DB_CONNECT_STRING": "redis://127.0.0.1:port/0"}, "MONGODB_DB_CONNECT_STRING"),
        ({"MONGODB_DB_CONNECT_STRING": "amqp://"}, "MONGODB_DB_CONNECT_STRING"),
    ],
)
def test_from_env_rejects_bad_values_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    base = {"FLASK_WEBHOOK_SECRET": "s"} if variable == "FLASK_FLAVOURS" else dict(MINIMAL)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**base, **env})
    assert caught.value.message.startswith(f"{variable}:")


def test_broker_url_error_does_not_echo_the_url_with_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**MINIMAL, "MONGODB_DB_CONNECT_STRING": "mysql://u:hunter2@127.0.0.1"})
    assert "hunter2" not in caught.value.message


def test_app_start_fails_with_the_variable_named_when_configuration_is_bad() -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "MONGO"))
    }
    env.update(
        {
            "FLASK_FLAVOURS": "- small: [x64]",
            "FLASK_WEBHOOK_SECRET": "s",
            "FLASK_LOG_LEVEL": "LOUD",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "FLASK_LOG_LEVEL: 'LOUD' is not one of" in result.stderr


def _start_app(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import app.py in a fresh interpreter, as gunicorn does, with only `extra` configured."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "MONGO"))
    }
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_app_refuses_to_start_without_a_webhook_secret() -> None:
    result = _start_app({"FLASK_FLAVOURS": "- small: [x64]", "FLASK_METRICS_PORT": "0"})

    assert result.returncode != 0
    assert "FLASK_WEBHOOK_SECRET: not set" in result.stderr
    assert "FLASK_ALLOW_UNSIGNED_WEBHOOKS=true" in result.stderr


def test_app_starts_unsigned_only_with_the_opt_out_and_warns_every_time() -> None:
    env = {
        "FLASK_FLAVOURS": "- small: [x64]",
        "FLASK_METRICS_PORT": "0",
        "FLASK_ALLOW_UNSIGNED_WEBHOOKS": "true",
    }
    for _ in range(2):
        result = _start_app(env)
        assert result.returncode == 0, result.stderr
        assert "signatures are NOT checked" in result.stderr


def test_secret_list_is_one_secret_per_line_kept_byte_for_byte() -> None:
    settings = Settings.from_env(
        {**MINIMAL, "FLASK_WEBHOOK_SECRET": "new, with comma \r\n\n old secret\n"}
    )

    assert settings.webhook_secrets == (b"new, with comma ", b" old secret")


def test_opt_out_is_ignored_when_a_secret_is_set() -> None:
    settings = Settings.from_env({**MINIMAL, "FLASK_ALLOW_UNSIGNED_WEBHOOKS": "true"})

    assert settings.webhook_secrets == (b"s",)
