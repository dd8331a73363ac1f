"""One test (or more) per Juju event the provider charm handles."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import sys

import pytest
from charm import HttprequestLegoProviderCharm
from config_check import COMMAND as CONFIG_CHECK
from ops import pebble, testing
from testing_support.events import EventContract
from testing_support.states import SECRET_KEY, ingress_relation, with_relation

from tests.states import (
    CONFIG,
    CONTAINER,
    DB_PASSWORD,
    DB_URI,
    GIT_REPO,
    KEYSCAN,
    KNOWN_HOSTS,
    MIGRATE,
    PROVIDER,
    SERVICE,
    SSH_KEY,
    container,
    peer_relation,
    postgresql_relation,
    ready_state,
    service_environment,
)

SSH_DIR = "/var/lib/httprequest-lego-provider/.ssh"


def migrations(ctx: testing.Context[HttprequestLegoProviderCharm]) -> int:
    """How many times the charm ran the database migrations so far."""
    return sum(tuple(c.command) == MIGRATE for c in ctx.exec_history[CONTAINER])


class TestProviderEvents(EventContract):
    subject = PROVIDER


def pushed(
    ctx: testing.Context[HttprequestLegoProviderCharm], state: testing.State, path: str
) -> tuple[str, int]:
    """Content and permission bits of a file the charm pushed into the workload."""
    file = state.get_container(CONTAINER).get_filesystem(ctx) / path.lstrip("/")
    return file.read_text(), stat.S_IMODE(file.stat().st_mode)


def test_pebble_ready_writes_ssh_files_migrates_then_starts(ctx):
    """Arrange: all set. Act: pebble-ready. Assert: 0600 files, migration env, plan, active."""
    state = ready_state()

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    assert pushed(ctx, out, f"{SSH_DIR}/id_git") == (SSH_KEY + "\n", 0o600)
    assert pushed(ctx, out, f"{SSH_DIR}/known_hosts") == (KNOWN_HOSTS + "\n", 0o600)
    ssh_dir = out.get_container(CONTAINER).get_filesystem(ctx) / SSH_DIR.lstrip("/")
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
    check, migration = ctx.exec_history[CONTAINER]
    assert tuple(check.command) == CONFIG_CHECK  # the service's own check comes first
    # The check sees what the janitor worker runs with too: the service validates it.
    assert check.environment == {**migration.environment, "DJANGO_JANITOR_MAX_AGE": "10800"}
    assert tuple(migration.command) == MIGRATE
    assert migration.working_dir == "/django/app"
    assert migration.user == "_daemon_"
    assert migration.environment["POSTGRESQL_DB_CONNECT_STRING"] == DB_URI
    service = out.get_container(CONTAINER).plan.services[SERVICE]
    assert service.command == (
        "/bin/python3 -m gunicorn -c /django/gunicorn.conf.py"
        " httprequest_lego_provider.wsgi:application --bind 0.0.0.0:8000"
        " --worker-class gevent --workers 2 --threads 1 --timeout 60 --keep-alive 2"
        " --worker-connections 1000"
    )
    assert service.user == "_daemon_"
    assert service.working_dir == "/django/app"
    assert service.environment == migration.environment
    assert out.get_container(CONTAINER).service_statuses[SERVICE] == pebble.ServiceStatus.ACTIVE
    assert out.unit_status == testing.ActiveStatus()


def test_workload_environment_points_at_the_files_not_the_key(ctx):
    state = ready_state()

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    env = service_environment(out)
    assert env["DJANGO_GIT_REPO"] == GIT_REPO
    assert env["DJANGO_GIT_SSH_KEY_FILE"] == f"{SSH_DIR}/id_git"
    assert env["DJANGO_GIT_KNOWN_HOSTS_FILE"] == f"{SSH_DIR}/known_hosts"
    assert env["DJANGO_DNS_BACKEND"] == "git"
    assert env["DJANGO_DATA_DIR"] == "/var/lib/httprequest-lego-provider/data"
    assert env["DJANGO_SECRET_KEY"] == SECRET_KEY
    assert env["DJANGO_LOG_LEVEL"] == "INFO"
    assert env["DJANGO_BASE_URL"] == "http://httprequest-lego-provider.lego:8000"
    assert json.loads(env["DJANGO_ALLOWED_HOSTS"]) == ["httprequest-lego-provider.lego"]
    assert env["POSTGRESQL_DB_PASSWORD"] == DB_PASSWORD
    assert env["POSTGRESQL_DB_HOSTNAME"] == "127.0.0.11"
    assert not any(SSH_KEY in value for value in env.values())


def test_without_known_hosts_the_charm_scans_the_repository_host(ctx):
    scanned = "# git.example:2222 SSH-2.0\n[git.example]:2222 ssh-ed25519 AAAAscanned\n"
    workload = container(
        execs=frozenset(
            {testing.Exec(MIGRATE), testing.Exec(KEYSCAN, stdout=scanned)},
        )
    )
    config = {**CONFIG, "git-repo": "ssh://lego@git.example:2222/dns.git"}
    del config["git-known-hosts"]
    state = ready_state(config=config, containers={workload})

    out = ctx.run(ctx.on.pebble_ready(workload), state)

    scan = ctx.exec_history[CONTAINER][0]
    assert scan.command == ["ssh-keyscan", "-T", "10", "-p", "2222", "git.example"]
    assert pushed(ctx, out, f"{SSH_DIR}/known_hosts") == (
        "[git.example]:2222 ssh-ed25519 AAAAscanned\n",
        0o600,
    )
    assert out.unit_status == testing.ActiveStatus()


@pytest.mark.parametrize(("return_code", "stdout"), [(1, ""), (0, "# only comments\n")])
def test_failed_keyscan_blocks_and_does_not_start(ctx, return_code, stdout):
    workload = container(
        execs=frozenset({testing.Exec(KEYSCAN, return_code=return_code, stdout=stdout)})
    )
    config = {key: value for key, value in CONFIG.items() if key != "git-known-hosts"}
    state = ready_state(config=config, containers={workload})

    out = ctx.run(ctx.on.pebble_ready(workload), state)

    assert out.unit_status.name == "blocked"
    assert "git.example" in out.unit_status.message
    assert "git-known-hosts" in out.unit_status.message
    assert out.get_container(CONTAINER).plan.services == {}


def test_config_changed_rewrites_the_key_and_restarts(ctx):
    state = ready_state()
    started = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)
    new_key = SSH_KEY.replace("b3Bl", "bmV3")

    out = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(
            started, config={**CONFIG, "git-ssh-key": new_key, "log-level": "warning"}
        ),
    )

    assert pushed(ctx, out, f"{SSH_DIR}/id_git") == (new_key + "\n", 0o600)
    assert service_environment(out)["DJANGO_LOG_LEVEL"] == "warning"  # read case-insensitively
    assert migrations(ctx) == 2  # migrated again before the restart


def test_update_status_keeps_files_and_does_not_migrate_again(ctx):
    state = ready_state()
    started = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    out = ctx.run(ctx.on.update_status(), started)

    assert migrations(ctx) == 1
    assert out.unit_status == testing.ActiveStatus()


def test_allowed_hosts_merge_configured_hosts_with_the_ingress_host(ctx):
    ingress = ingress_relation("https://lego.example/")
    state = with_relation(
        ready_state(config={**CONFIG, "allowed-hosts": "lego.internal, lego.example"}), ingress
    )

    out = ctx.run(ctx.on.relation_changed(ingress, remote_unit=0), state)

    env = service_environment(out)
    assert env["DJANGO_BASE_URL"] == "https://lego.example/"
    assert json.loads(env["DJANGO_ALLOWED_HOSTS"]) == ["lego.example", "lego.internal"]


def test_database_created_with_plain_fields_and_no_uris_builds_the_url(ctx):
    db = postgresql_relation(extra={"username": "lego", "password": DB_PASSWORD})
    state = ready_state(relations={db, peer_relation()}, secrets=set())

    out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), state)

    assert service_environment(out)["POSTGRESQL_DB_CONNECT_STRING"] == DB_URI


def test_failed_migration_blocks_and_does_not_start(ctx):
    workload = container(
        execs=frozenset({testing.Exec(MIGRATE, return_code=1, stderr="relation missing")})
    )
    state = ready_state(containers={workload})

    out = ctx.run(ctx.on.pebble_ready(workload), state)

    assert out.unit_status == testing.BlockedStatus(
        "database migration failed; see juju debug-log"
    )
    assert out.get_container(CONTAINER).plan.services == {}


def test_a_follower_runs_with_the_leaders_key(ctx):
    state = ready_state(leader=False)

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    assert service_environment(out)["DJANGO_SECRET_KEY"] == SECRET_KEY
    db = next(r for r in out.relations if r.endpoint == "postgresql")
    assert db.local_app_data == {}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("git-ssh-key", SSH_KEY.replace("b3Bl", "bmV3")),
        ("git-known-hosts", "[git.example.com]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAInew"),
    ],
)
def test_changing_only_the_key_or_host_keys_restarts_the_service(ctx, option, value):
    """The service reads the files once at start; the charm must restart it on a change."""
    state = ready_state()
    started = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)
    before = service_environment(started)["DJANGO_GIT_CREDENTIALS_SHA256"]

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(started, config={**CONFIG, option: value})
    )

    assert service_environment(out)["DJANGO_GIT_CREDENTIALS_SHA256"] != before
    assert migrations(ctx) == 2  # migrated again before the restart


def service_reads(environment: dict[str, str], expression: str) -> object:
    """What the real service makes of the environment: ``expression`` evaluated in its source.

    The service's own readers (``ClientAddressConfig``, ``OperationsSettings``), imported from
    its source as the workload imports them.
    """
    program = (
        "import json, os\n"
        "from httprequest_lego_provider.environment import ClientAddressConfig\n"
        "from api.operations import OperationsSettings\n"
        f"print(json.dumps({expression}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=PROVIDER.workload_source,
        env={**environment, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PROXY_HOPS = "ClientAddressConfig.from_env(os.environ).proxy_hops"


def test_behind_the_ingress_the_service_trusts_one_forwarded_hop(ctx):
    ingress = ingress_relation("https://lego.example/")
    state = with_relation(ready_state(), ingress)

    out = ctx.run(ctx.on.relation_changed(ingress, remote_unit=0), state)

    environment = service_environment(out)
    assert environment["DJANGO_PROXY_HOPS"] == "1"
    assert service_reads(environment, PROXY_HOPS) == 1


def test_without_the_ingress_no_forwarded_address_is_trusted(ctx):
    state = ready_state()

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    environment = service_environment(out)
    assert "DJANGO_PROXY_HOPS" not in environment
    assert service_reads(environment, PROXY_HOPS) == 0


def test_when_the_ingress_leaves_the_forwarded_hop_is_no_longer_trusted(ctx):
    ingress = ingress_relation("https://lego.example/")
    state = with_relation(ready_state(), ingress)
    behind = ctx.run(ctx.on.relation_changed(ingress, remote_unit=0), state)
    assert service_environment(behind)["DJANGO_PROXY_HOPS"] == "1"

    out = ctx.run(ctx.on.relation_broken(behind.get_relation(ingress.id)), behind)

    assert "DJANGO_PROXY_HOPS" not in service_environment(out)


def test_prometheus_scrapes_the_providers_own_metrics_beside_gunicorns(ctx):
    metrics = testing.Relation("metrics-endpoint")
    state = with_relation(ready_state(), metrics)

    out = ctx.run(ctx.on.relation_joined(metrics, remote_unit=0), state)

    jobs = json.loads(out.get_relation(metrics.id).local_app_data["scrape_jobs"])
    assert jobs == [
        {"metrics_path": "/metrics", "static_configs": [{"targets": ["*:9102"]}]},
        {"metrics_path": "/metrics", "static_configs": [{"targets": ["*:9103"]}]},
    ]
    environment = service_environment(out)
    assert environment["DJANGO_METRICS_PORT"] == "9103"
    # The port the service really serves its metrics on is the one scraped.
    assert (
        service_reads(environment, "OperationsSettings.from_env(os.environ).metrics_port") == 9103
    )
