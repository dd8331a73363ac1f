"""One test (or more) per Juju event the router charm handles (seed 003, events 1-12)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from config_check import COMMAND as CONFIG_CHECK
from ops import pebble, testing
from testing_support.events import EventContract
from testing_support.states import SECRET_KEY, ingress_relation, with_peer, with_relation
from twelve_factor.database import DatabaseCreatedEvent, DatabaseEndpointsChangedEvent
from twelve_factor.ingress import IngressReadyEvent, IngressRevokedEvent

from tests.states import (
    CONFIG,
    CONTAINER,
    FLAVOURS,
    ROUTER,
    SERVICE,
    THREE_HOST_URI,
    WEBHOOK_SECRET,
    container,
    mongodb_relation,
    mongodb_secret,
    peer_relation,
    ready_state,
    service_environment,
)


class TestRouterEvents(EventContract):
    subject = ROUTER


def test_pebble_ready_starts_gunicorn_with_the_full_environment(ctx):
    """Arrange: everything ready. Act: pebble-ready. Assert: plan, env, running, active."""
    state = ready_state()

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    service = out.get_container(CONTAINER).plan.services[SERVICE]
    assert service.command == (
        "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py app:app --bind 0.0.0.0:8000"
        " --worker-class gevent --workers 2 --threads 1 --timeout 60 --keep-alive 2"
        " --worker-connections 1000"
    )
    assert service.user == "_daemon_"
    assert service.working_dir == "/flask/app"
    env = service_environment(out)
    assert env["FLASK_FLAVOURS"] == FLAVOURS.strip()
    assert "FLASK_DEFAULT_FLAVOUR" not in env  # the service takes the first flavour
    assert env["FLASK_DEFAULT_SELF_HOSTED_LABELS"] == "self-hosted,linux"
    assert env["FLASK_LOG_LEVEL"] == "INFO"
    assert env["FLASK_SECRET_KEY"] == SECRET_KEY
    assert env["FLASK_BASE_URL"] == "http://github-runner-webhook-router.ci:8000"
    assert env["FLASK_WEBHOOK_SECRET"] == WEBHOOK_SECRET
    assert out.get_container(CONTAINER).service_statuses[SERVICE] == pebble.ServiceStatus.ACTIVE
    assert out.unit_status == testing.ActiveStatus()


def test_three_host_mongodb_uri_reaches_the_workload_intact(ctx):
    state = ready_state()

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    env = service_environment(out)
    assert env["MONGODB_DB_CONNECT_STRING"] == THREE_HOST_URI
    assert env["MONGODB_DB_HOSTS"] == "127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017"
    assert env["MONGODB_DB_HOSTNAME"] == "127.0.0.1"
    assert env["MONGODB_DB_PORT"] == "27017"
    assert env["MONGODB_DB_USERNAME"] == "router"
    assert env["MONGODB_DB_PASSWORD"] == "pass/word"
    assert env["MONGODB_DB_NAME"] == "github-runner-webhook-router"


def test_pebble_ready_republishes_ingress_address_of_the_restarted_pod(ctx, monkeypatch):
    """A restarted pod has a new IP; the ingress must learn it without operator action.

    The host is the pod's own FQDN, in whatever DNS domain the cluster uses.
    """
    fqdn = "github-runner-webhook-router-0.github-runner-webhook-router-endpoints.ci.svc.k8s.test"
    monkeypatch.setattr("socket.getfqdn", lambda *_: fqdn)
    ingress = ingress_relation("http://x")
    state = dataclasses.replace(
        with_relation(ready_state(), ingress),
        networks=frozenset(
            {
                testing.Network(
                    "ingress",
                    [testing.BindAddress([testing.Address("127.0.0.39")])],
                    ingress_addresses=["127.0.0.39"],
                )
            }
        ),
    )

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    unit_data = out.get_relation(ingress.id).local_unit_data
    assert json.loads(unit_data["ip"]) == "127.0.0.39"
    assert json.loads(unit_data["host"]) == fqdn
    app_data = out.get_relation(ingress.id).local_app_data
    assert {key: json.loads(value) for key, value in app_data.items()} == {
        "model": "ci",
        "name": "github-runner-webhook-router",
        "port": 8000,
        "strip-prefix": True,
        "is_port_open": True,
    }


def test_upgrade_charm_republishes_ingress_data(ctx):
    ingress = testing.Relation("ingress", local_unit_data={"ip": json.dumps("127.0.0.41")})
    state = with_relation(ready_state(), ingress)

    out = ctx.run(ctx.on.upgrade_charm(), state)

    assert json.loads(out.get_relation(ingress.id).local_unit_data["ip"]) == "192.0.2.0"


def test_config_changed_passes_options_as_flask_variables(ctx):
    state = ready_state(
        config={
            "flavours": FLAVOURS,
            "default-flavour": "large",
            "default-self-hosted-labels": "self-hosted",
            "log-level": "debug",
            "webhook-secret": "hook-secret",
            "webserver-workers": 4,
            "allowed-repositories": "canonical",
        }
    )

    out = ctx.run(ctx.on.config_changed(), state)

    env = service_environment(out)
    assert env["FLASK_DEFAULT_FLAVOUR"] == "large"
    assert env["FLASK_DEFAULT_SELF_HOSTED_LABELS"] == "self-hosted"
    assert env["FLASK_LOG_LEVEL"] == "debug"  # the service reads it case-insensitively
    assert env["FLASK_WEBHOOK_SECRET"] == "hook-secret"
    assert env["FLASK_ALLOWED_REPOSITORIES"] == "canonical"
    assert env["FLASK_ALLOW_UNSIGNED_WEBHOOKS"] == "false"
    assert "--workers 4" in out.get_container(CONTAINER).plan.services[SERVICE].command


def test_secret_storage_relation_created_generates_the_key_once(ctx):
    peer = peer_relation(secret_key=None)
    state = with_peer(ready_state(), peer)

    out = ctx.run(ctx.on.relation_created(peer), state)

    key = out.get_relation(peer.id).local_app_data["flask_secret_key"]
    assert len(key) >= 50
    assert service_environment(out)["FLASK_SECRET_KEY"] == key
    again = ctx.run(ctx.on.relation_created(out.get_relation(peer.id)), out)
    assert again.get_relation(peer.id).local_app_data["flask_secret_key"] == key


def test_secret_storage_relation_changed_gives_a_follower_the_leaders_key(ctx):
    peer = peer_relation(secret_key="key-from-leader")
    state = with_peer(ready_state(leader=False), peer)

    out = ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state)

    assert service_environment(out)["FLASK_SECRET_KEY"] == "key-from-leader"
    assert out.unit_status == testing.ActiveStatus()


def test_follower_waits_for_the_leader_to_set_the_key(ctx):
    peer = peer_relation(secret_key=None)
    state = with_peer(ready_state(leader=False), peer)

    out = ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state)

    assert out.unit_status == testing.WaitingStatus("waiting for the leader to set the secret key")
    assert "flask_secret_key" not in out.get_relation(peer.id).local_app_data
    assert out.get_container(CONTAINER).plan.services == {}


def test_follower_does_not_write_application_databags(ctx):
    base = ready_state(leader=False)
    db = next(r for r in base.relations if r.endpoint == "mongodb")

    out = ctx.run(ctx.on.relation_created(db), base)

    assert out.get_relation(db.id).local_app_data == {}


def test_secret_storage_relation_departed_keeps_the_workload_running(ctx):
    state = ready_state()
    peer = next(r for r in state.relations if r.endpoint == "secret-storage")

    out = ctx.run(ctx.on.relation_departed(peer, remote_unit=1), state)

    assert service_environment(out)["FLASK_SECRET_KEY"] == SECRET_KEY
    assert out.unit_status == testing.ActiveStatus()


def test_missing_peer_relation_waits(ctx):
    base = ready_state()
    state = dataclasses.replace(
        base, relations=frozenset(r for r in base.relations if r.endpoint != "secret-storage")
    )

    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.WaitingStatus("waiting for the secret-storage peer relation")


def test_update_status_does_not_restart_an_unchanged_service(ctx):
    state = ready_state()
    started = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    out = ctx.run(ctx.on.update_status(), started)

    assert out.unit_status == testing.ActiveStatus()
    assert service_environment(out) == service_environment(started)


def test_secret_changed_brings_the_rotated_database_password(ctx):
    secret = dataclasses.replace(
        mongodb_secret(),
        latest_content={
            "username": "router",
            "password": "rotated",
            "uris": "mongodb://router:rotated@127.0.0.1:27017/db",
        },
    )
    state = ready_state(relations={mongodb_relation(secret), peer_relation()}, secrets={secret})

    out = ctx.run(ctx.on.secret_changed(secret), state)

    env = service_environment(out)
    assert env["MONGODB_DB_PASSWORD"] == "rotated"
    assert env["MONGODB_DB_CONNECT_STRING"] == "mongodb://router:rotated@127.0.0.1:27017/db"


SECRET = mongodb_secret()


@pytest.mark.parametrize(
    ("db", "secrets", "uri"),
    [
        pytest.param(mongodb_relation(SECRET), {SECRET}, THREE_HOST_URI, id="juju-secret"),
        pytest.param(
            mongodb_relation(extra={"username": "router", "password": "plain", "uris": ""}),
            set(),
            "mongodb://router:plain@127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017/"
            "github-runner-webhook-router?replicaSet=mongodb&authSource=admin",
            id="plain-fields",
        ),
    ],
)
def test_database_created_through_a_juju_secret_or_plain_fields(ctx, db, secrets, uri):
    """Credentials appearing on relation-changed emit database_created and start the app."""
    state = ready_state(relations={db, peer_relation()}, secrets=secrets)

    out = ctx.run(ctx.on.relation_changed(db), state)

    assert any(isinstance(e, DatabaseCreatedEvent) for e in ctx.emitted_events)
    assert service_environment(out)["MONGODB_DB_CONNECT_STRING"] == uri
    assert out.unit_status == testing.ActiveStatus()


def test_database_secret_not_granted_yet_waits(ctx):
    db = mongodb_relation(extra={"secret-user": "secret:unknown"})
    state = ready_state(relations={db, peer_relation()}, secrets=set())

    out = ctx.run(ctx.on.relation_changed(db), state)

    assert out.unit_status == testing.WaitingStatus("waiting for the mongodb database")


def test_endpoints_changed_reconfigures_the_workload(ctx):
    secret = mongodb_secret()
    db = mongodb_relation(secret)
    state = ready_state(relations={db, peer_relation()}, secrets={secret})
    first = ctx.run(ctx.on.relation_changed(db), state)
    moved = dataclasses.replace(
        first.get_relation(db.id),
        remote_app_data={**db.remote_app_data, "endpoints": "127.0.0.4:27017"},
    )
    new_uri = "mongodb://router:pass%2Fword@127.0.0.4:27017/github-runner-webhook-router"
    content = {**secret.tracked_content, "uris": new_uri}
    rotated = dataclasses.replace(secret, tracked_content=content, latest_content=content)
    state = dataclasses.replace(
        first,
        relations=(first.relations - {first.get_relation(db.id)}) | {moved},
        secrets={rotated},
    )

    out = ctx.run(ctx.on.relation_changed(moved), state)

    assert any(isinstance(e, DatabaseEndpointsChangedEvent) for e in ctx.emitted_events)
    assert service_environment(out)["MONGODB_DB_HOSTNAME"] == "127.0.0.4"


def published_ingress(ctx, url: str) -> tuple[testing.State, testing.Relation]:
    """The ready unit after the ingress provider published ``url``, and that relation."""
    ingress = ingress_relation(url)
    out = ctx.run(
        ctx.on.relation_changed(ingress, remote_unit=0), with_relation(ready_state(), ingress)
    )
    return out, out.get_relation(ingress.id)


def test_ingress_ready_sets_the_base_url(ctx):
    out, _ = published_ingress(ctx, "https://ci.example/ci-router")

    assert any(isinstance(e, IngressReadyEvent) for e in ctx.emitted_events)
    assert service_environment(out)["FLASK_BASE_URL"] == "https://ci.example/ci-router"


def test_ingress_revoked_falls_back_to_the_in_cluster_url(ctx):
    ready, ingress = published_ingress(ctx, "https://ci.example/ci-router")

    out = ctx.run(ctx.on.relation_broken(ingress), ready)

    assert any(isinstance(e, IngressRevokedEvent) for e in ctx.emitted_events)
    assert service_environment(out)["FLASK_BASE_URL"] == (
        "http://github-runner-webhook-router.ci:8000"
    )


def test_ingress_url_withdrawn_is_revoked(ctx):
    ready, ingress = published_ingress(ctx, "https://x/y")
    emptied = dataclasses.replace(ingress, remote_app_data={})
    state = dataclasses.replace(ready, relations=(ready.relations - {ingress}) | {emptied})

    out = ctx.run(ctx.on.relation_changed(emptied), state)

    assert any(isinstance(e, IngressRevokedEvent) for e in ctx.emitted_events)
    assert service_environment(out)["FLASK_BASE_URL"].startswith("http://github-runner")


@pytest.mark.parametrize("raw", ["not json", json.dumps(["a"]), json.dumps({"url": ""})])
def test_malformed_ingress_data_is_ignored(ctx, raw):
    ingress = testing.Relation("ingress", remote_app_data={"ingress": raw})
    state = with_relation(ready_state(), ingress)
    started = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    out = ctx.run(
        ctx.on.relation_changed(started.get_relation(ingress.id), remote_unit=0), started
    )

    assert not any(isinstance(e, IngressReadyEvent) for e in ctx.emitted_events)
    assert service_environment(out)["FLASK_BASE_URL"].startswith("http://github-runner")


def test_metrics_endpoint_publishes_the_scrape_job(ctx):
    metrics = testing.Relation("metrics-endpoint")
    state = with_relation(ready_state(), metrics)

    out = ctx.run(ctx.on.relation_joined(metrics, remote_unit=0), state)

    relation = out.get_relation(metrics.id)
    assert json.loads(relation.local_app_data["scrape_jobs"]) == [
        {"metrics_path": "/metrics", "static_configs": [{"targets": ["*:9102"]}]},
        {"metrics_path": "/metrics", "static_configs": [{"targets": ["*:9103"]}]},
    ]
    assert service_environment(out)["FLASK_METRICS_PORT"] == "9103"
    metadata = json.loads(relation.local_app_data["scrape_metadata"])
    assert metadata["application"] == "github-runner-webhook-router"
    assert metadata["charm_name"] == "github-runner-webhook-router"
    assert metadata["model"] == "ci"
    assert relation.local_unit_data["prometheus_scrape_unit_name"] == (
        "github-runner-webhook-router/0"
    )
    assert relation.local_unit_data["prometheus_scrape_unit_address"] == "192.0.2.0"


def test_leader_elected_takes_over_the_requests(ctx):
    db = testing.Relation("mongodb")
    state = ready_state(relations={db, peer_relation()}, secrets=set())

    out = ctx.run(ctx.on.leader_elected(), state)

    assert out.get_relation(db.id).local_app_data["database"] == "github-runner-webhook-router"


def test_flask_migrate_script_runs_before_start(ctx, tmp_path):
    script = tmp_path / "migrate.sh"
    script.write_text("#!/bin/sh\n")
    workload = container(
        mounts={"migrate": testing.Mount(location="/flask/app/migrate.sh", source=script)},
        execs={testing.Exec(["bash", "migrate.sh"])},
    )
    state = ready_state(containers={workload})

    out = ctx.run(ctx.on.pebble_ready(workload), state)

    check, migration = ctx.exec_history[CONTAINER]
    assert tuple(check.command) == CONFIG_CHECK  # the service's check comes first
    assert migration.command == ["bash", "migrate.sh"]
    assert migration.working_dir == "/flask/app"
    assert migration.environment["MONGODB_DB_CONNECT_STRING"] == THREE_HOST_URI
    assert out.unit_status == testing.ActiveStatus()


def test_failed_migration_blocks_and_does_not_start(ctx, tmp_path):
    script = tmp_path / "migrate.py"
    script.write_text("")
    workload = container(
        mounts={"migrate": testing.Mount(location="/flask/app/migrate.py", source=script)},
        execs={testing.Exec(["/bin/python3", "migrate.py"], return_code=1, stderr="boom")},
    )
    state = ready_state(containers={workload})

    out = ctx.run(ctx.on.pebble_ready(workload), state)

    assert out.unit_status == testing.BlockedStatus(
        "database migration failed; see juju debug-log"
    )
    assert out.get_container(CONTAINER).plan.services == {}


def test_webhook_secret_reaches_the_service_byte_for_byte(ctx):
    """GitHub signs with the whole secret: surrounding spaces must not be trimmed."""
    state = ready_state(config={"flavours": FLAVOURS, "webhook-secret": " s3cret \n old "})

    out = ctx.run(ctx.on.config_changed(), state)

    assert service_environment(out)["FLASK_WEBHOOK_SECRET"] == " s3cret \n old "


def test_dedup_url_shares_the_delivery_store_between_units(ctx):
    url = "redis://:pw@127.0.0.1:6379/4"
    state = ready_state(config={**CONFIG, "dedup-url": url})

    out = ctx.run(ctx.on.config_changed(), state)

    assert service_environment(out)["FLASK_DEDUP_URL"] == url
