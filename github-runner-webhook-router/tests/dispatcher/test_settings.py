"""Configuration from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from runner_dispatcher.errors import ConfigError
from runner_dispatcher.settings import Settings
from webhook_router.github_api import AppCredentials

MINIMAL = {"DISPATCHER_FLAVOURS": "small", "DISPATCHER_SPAWN_COMMAND": "/usr/bin/true"}


def test_defaults_follow_the_last_consumers_attempts_and_backoff() -> None:
    settings = Settings.from_env(MINIMAL)

    assert settings.flavours == ("small",)
    assert settings.spawn_command == ("/usr/bin/true",)
    assert settings.max_attempts == 5
    assert (settings.backoff_base_seconds, settings.backoff_max_seconds) == (60, 1800)
    # The last consumer's 5-minute pickup bound, polled every 10 s instead of every 60 s.
    assert (settings.pickup_interval_seconds, settings.pickup_polls) == (10, 30)
    assert settings.consumers == 16
    # Within Redis's visibility timeout and RabbitMQ's default consumer_timeout (30 minutes).
    # Backoff, spawn, pickup window, GitHub calls (token, job, JIT, delete, polls), broker.
    assert settings.longest_hold_seconds() == 480 + 600 + 10 * 30 + 10 * 34 + 5 * 3
    assert settings.longest_hold_seconds() < 1800
    assert settings.rabbitmq_consumer_timeout_seconds == 1800
    assert settings.github_outage_max_seconds == 86400
    assert settings.api_url == "https://api.github.com"
    assert settings.broker_url is None  # the embedded broker
    assert settings.auth is None
    assert settings.labels_for("small") == {"x64", "small"}
    assert settings.health_address == "127.0.0.1"


def test_broker_url_comes_from_the_routers_variable_unless_overridden() -> None:
    router = "amqp://guest:guest@127.0.0.1:5672//"
    override = "redis://127.0.0.1:6379/3"

    assert Settings.from_env({**MINIMAL, "MONGODB_DB_CONNECT_STRING": router}).broker_url == router
    both = {**MINIMAL, "MONGODB_DB_CONNECT_STRING": router, "DISPATCHER_BROKER_URL": override}
    assert Settings.from_env(both).broker_url == override


def test_state_dir_defaults_to_the_routers_so_the_embedded_broker_is_shared(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({**MINIMAL, "FLASK_STATE_DIR": str(tmp_path)})

    assert settings.state_dir == tmp_path


def test_spawn_command_is_a_json_array_or_shell_like_words_never_run_by_a_shell() -> None:
    as_json = {**MINIMAL, "DISPATCHER_SPAWN_COMMAND": '["/opt/spawn", "--flavour", "a b"]'}
    as_words = {**MINIMAL, "DISPATCHER_SPAWN_COMMAND": "/opt/spawn --flavour 'a b' $HOME"}

    assert Settings.from_env(as_json).spawn_command == ("/opt/spawn", "--flavour", "a b")
    assert Settings.from_env(as_words).spawn_command == ("/opt/spawn", "--flavour", "a b", "$HOME")


def test_labels_architecture_and_ghes_url_are_read() -> None:
    settings = Settings.from_env(
        {
            **MINIMAL,
            "DISPATCHER_LABELS": "Large, gpu,large",
            "DISPATCHER_ARCHITECTURE": "ARM64",
            "DISPATCHER_GITHUB_API_URL": "https://127.0.0.9/api/v3/",
        }
    )

    assert settings.labels_for("Small") == {"large", "gpu", "arm64", "small"}
    assert settings.api_url == "https://127.0.0.9/api/v3"


def test_github_app_credentials_are_read_like_the_redelivery_tools() -> None:
    env = {
        **MINIMAL,
        "GITHUB_APP_CLIENT_ID": "Iv1.x",
        "GITHUB_APP_INSTALLATION_ID": "7",
        "GITHUB_APP_PRIVATE_KEY": "pem",
        "DISPATCHER_JIT_CONFIG": "true",
    }

    settings = Settings.from_env(env)

    assert settings.auth == AppCredentials("Iv1.x", "7", "pem")
    assert settings.jit_config


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DISPATCHER_FLAVOURS": ""}, "DISPATCHER_FLAVOURS"),
        ({"DISPATCHER_FLAVOURS": "a,b c"}, "DISPATCHER_FLAVOURS"),
        ({"DISPATCHER_FLAVOURS": "../x"}, "DISPATCHER_FLAVOURS"),
        ({"DISPATCHER_SPAWN_COMMAND": ""}, "DISPATCHER_SPAWN_COMMAND"),
        ({"DISPATCHER_SPAWN_COMMAND": "[1, 2]"}, "DISPATCHER_SPAWN_COMMAND"),
        ({"DISPATCHER_SPAWN_COMMAND": "[oops"}, "DISPATCHER_SPAWN_COMMAND"),
        ({"DISPATCHER_SPAWN_COMMAND": "spawn 'unclosed"}, "DISPATCHER_SPAWN_COMMAND"),
        ({"MONGODB_DB_CONNECT_STRING": "http://x"}, "MONGODB_DB_CONNECT_STRING"),
        ({"DISPATCHER_BROKER_URL": "nonsense"}, "DISPATCHER_BROKER_URL"),
        ({"DISPATCHER_GITHUB_API_URL": "ftp://x"}, "DISPATCHER_GITHUB_API_URL"),
        ({"DISPATCHER_CONSUMERS": "0"}, "DISPATCHER_CONSUMERS"),
        ({"DISPATCHER_CONSUMERS": "many"}, "DISPATCHER_CONSUMERS"),
        ({"DISPATCHER_MAX_ATTEMPTS": "0"}, "DISPATCHER_MAX_ATTEMPTS"),
        ({"DISPATCHER_BACKOFF_BASE_SECONDS": "-1"}, "DISPATCHER_BACKOFF_BASE_SECONDS"),
        ({"DISPATCHER_BACKOFF_MAX_SECONDS": "nan"}, "DISPATCHER_BACKOFF_MAX_SECONDS"),
        ({"DISPATCHER_PICKUP_POLLS": "0"}, "DISPATCHER_PICKUP_POLLS"),
        ({"DISPATCHER_HEALTH_PORT": "70000"}, "DISPATCHER_HEALTH_PORT"),
        ({"DISPATCHER_LOG_LEVEL": "LOUD"}, "DISPATCHER_LOG_LEVEL"),
        ({"DISPATCHER_ARCHITECTURE": "s390x"}, "DISPATCHER_ARCHITECTURE"),
        ({"DISPATCHER_JIT_CONFIG": "maybe"}, "DISPATCHER_JIT_CONFIG"),
        ({"DISPATCHER_JIT_CONFIG": "true"}, "DISPATCHER_JIT_CONFIG"),
        ({"DISPATCHER_JIT_SCOPE": "enterprise"}, "DISPATCHER_JIT_SCOPE"),
        (
            {"DISPATCHER_OFFLINE_DEMO": "true", "DISPATCHER_JIT_CONFIG": "1", "GITHUB_TOKEN": "t"},
            "DISPATCHER_OFFLINE_DEMO",
        ),
        ({"DISPATCHER_SPAWN_PASS_ENV": "OK,NOT-OK"}, "DISPATCHER_SPAWN_PASS_ENV"),
        ({"DISPATCHER_SPAWN_PASS_ENV": "SPAWN_DIR,GITHUB_TOKEN"}, "DISPATCHER_SPAWN_PASS_ENV"),
        ({"DISPATCHER_SPAWN_PASS_ENV": "GITHUB_APP_PRIVATE_KEY"}, "DISPATCHER_SPAWN_PASS_ENV"),
        ({"DISPATCHER_SPAWN_PASS_ENV": "DISPATCHER_BROKER_URL"}, "DISPATCHER_SPAWN_PASS_ENV"),
        (
            # 8 attempts: a 1800 s backoff alone reaches RabbitMQ's default consumer_timeout.
            {"DISPATCHER_BROKER_URL": "amqp://127.0.0.1//", "DISPATCHER_MAX_ATTEMPTS": "8"},
            "DISPATCHER_RABBITMQ_CONSUMER_TIMEOUT_SECONDS",
        ),
        (
            {
                "DISPATCHER_BROKER_URL": "amqp://127.0.0.1//",
                "DISPATCHER_RABBITMQ_CONSUMER_TIMEOUT_SECONDS": "1700",
            },
            "DISPATCHER_RABBITMQ_CONSUMER_TIMEOUT_SECONDS",
        ),
        ({"GITHUB_TOKEN": "t", "GITHUB_APP_CLIENT_ID": "x"}, "GITHUB_TOKEN"),
        ({"GITHUB_APP_CLIENT_ID": "x"}, "GITHUB_APP_INSTALLATION_ID"),
        (
            {
                "DISPATCHER_BROKER_URL": "redis://127.0.0.1:6379/0",
                "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS": "600",
            },
            "DISPATCHER_REDIS_VISIBILITY_TIMEOUT_SECONDS",
        ),
    ],
)
def test_invalid_values_fail_the_start_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**MINIMAL, **env})


def test_missing_flavours_and_command_are_named() -> None:
    with pytest.raises(ConfigError, match="DISPATCHER_FLAVOURS"):
        Settings.from_env({"DISPATCHER_SPAWN_COMMAND": "x"})
    with pytest.raises(ConfigError, match="DISPATCHER_SPAWN_COMMAND"):
        Settings.from_env({"DISPATCHER_FLAVOURS": "x"})


def test_broker_url_is_never_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**MINIMAL, "DISPATCHER_BROKER_URL": "http://user:s3cret@127.0.0.1"})

    assert "s3cret" not in str(caught.value)


def test_the_command_exits_1_naming_the_variable_when_the_configuration_is_wrong() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runner_dispatcher"],
        cwd=Path(__file__).parent.parent.parent,
        env={"PATH": "/usr/bin:/bin", "DISPATCHER_FLAVOURS": "small"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: DISPATCHER_SPAWN_COMMAND: not set")


def test_defaults_fit_rabbitmqs_default_consumer_timeout() -> None:
    settings = Settings.from_env({**MINIMAL, "DISPATCHER_BROKER_URL": "amqp://127.0.0.1//"})

    assert settings.longest_hold_seconds() < settings.rabbitmq_consumer_timeout_seconds


def test_a_raised_consumer_timeout_allows_more_attempts() -> None:
    settings = Settings.from_env(
        {
            **MINIMAL,
            "DISPATCHER_BROKER_URL": "amqp://127.0.0.1//",
            "DISPATCHER_MAX_ATTEMPTS": "8",
            "DISPATCHER_RABBITMQ_CONSUMER_TIMEOUT_SECONDS": "7200",
        }
    )

    assert settings.max_attempts == 8


@pytest.mark.parametrize(
    ("configured", "normalised"),
    [
        ("https://GHE.Example.com/api/v3", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com:443/api/v3/", "https://ghe.example.com/api/v3"),
        ("HTTPS://API.GITHUB.COM", "https://api.github.com"),
        ("http://127.0.0.5:80/api/v3", "http://127.0.0.5/api/v3"),
        ("https://127.0.0.5:8443/api/v3", "https://127.0.0.5:8443/api/v3"),
    ],
)
def test_the_api_url_is_normalised_once_host_lowercase_and_no_default_port(
    configured: str, normalised: str
) -> None:
    settings = Settings.from_env({**MINIMAL, "DISPATCHER_GITHUB_API_URL": configured})

    assert settings.api_url == normalised
