"""Event tests that hold for every twelve-factor charm: the base charm's own behaviour.

A charm's ``tests/test_events.py`` subclasses :class:`EventContract`, setting ``subject``; pytest
then runs these tests against that charm (the ``ctx`` fixture comes from its conftest).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

from ops import pebble, testing

from testing_support.states import with_peer
from testing_support.subject import CharmUnderTest


class EventContract:
    """Tests of the events every twelve-factor charm handles through the base."""

    subject: ClassVar[CharmUnderTest]

    def test_the_service_runs_the_measured_server_model(self, ctx: testing.Context[Any]) -> None:
        """The Pebble command carries the service's webserver.json (what the benchmarks ran)."""
        measured = json.loads((self.subject.rock_root / "webserver.json").read_text())
        state = self.subject.ready_state()

        out = ctx.run(ctx.on.pebble_ready(state.get_container(self.subject.container)), state)

        service = out.get_container(self.subject.container).plan.services[self.subject.service]
        command = service.command.split()
        flags = {
            "--worker-class": "worker_class",
            "--workers": "workers",
            "--threads": "threads",
            "--worker-connections": "worker_connections",
            "--timeout": "timeout",
            "--keep-alive": "keepalive",
        }
        for flag, key in flags.items():
            assert command[command.index(flag) + 1] == str(measured[key]), flag

    def test_a_configured_unit_opens_the_app_port(self, ctx: testing.Context[Any]) -> None:
        """Without it the application's Kubernetes service (the in-cluster URL) reaches no pod."""
        state = self.subject.ready_state()

        out = ctx.run(ctx.on.config_changed(), state)

        assert out.opened_ports == {testing.TCPPort(8000)}
        assert out.unit_status == testing.ActiveStatus()

    def test_an_unconfigured_unit_does_not_open_the_port(self, ctx: testing.Context[Any]) -> None:
        state = self.subject.ready_state(relations={self.subject.peer_relation()}, secrets=set())

        out = ctx.run(ctx.on.config_changed(), state)

        assert out.opened_ports == frozenset()

    def test_juju_proxy_settings_reach_the_workload_in_both_spellings(
        self, ctx: testing.Context[Any], monkeypatch: Any
    ) -> None:
        monkeypatch.setenv("JUJU_CHARM_HTTP_PROXY", "http://127.0.0.1:3128")
        monkeypatch.setenv("JUJU_CHARM_HTTPS_PROXY", "http://127.0.0.1:3129")
        monkeypatch.setenv("JUJU_CHARM_NO_PROXY", "127.0.0.1,.svc")
        state = self.subject.ready_state()

        out = ctx.run(ctx.on.config_changed(), state)

        env = out.get_container(self.subject.container).plan.services[self.subject.service]
        environment = dict(env.environment)
        for name, value in (
            ("HTTP_PROXY", "http://127.0.0.1:3128"),
            ("HTTPS_PROXY", "http://127.0.0.1:3129"),
            ("NO_PROXY", "127.0.0.1,.svc"),
        ):
            assert environment[name] == value
            assert environment[name.lower()] == value

    def test_without_juju_proxy_settings_no_proxy_variable_is_set(
        self, ctx: testing.Context[Any], monkeypatch: Any
    ) -> None:
        for name in ("JUJU_CHARM_HTTP_PROXY", "JUJU_CHARM_HTTPS_PROXY", "JUJU_CHARM_NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        state = self.subject.ready_state()

        out = ctx.run(ctx.on.config_changed(), state)

        env = out.get_container(self.subject.container).plan.services[self.subject.service]
        assert not {"HTTP_PROXY", "http_proxy", "NO_PROXY"} & set(env.environment)

    def test_a_key_stored_under_the_former_field_is_kept_and_moved(
        self, ctx: testing.Context[Any]
    ) -> None:
        """Refreshing from this charm's previous revision keeps sessions and tokens valid."""
        legacy = testing.PeerRelation("secret-storage", local_app_data={"secret-key": "old-key"})
        state = with_peer(self.subject.ready_state(), legacy)

        out = ctx.run(ctx.on.upgrade_charm(), state)

        field = f"{self.subject.framework}_secret_key"
        assert out.get_relation(legacy.id).local_app_data == {field: "old-key"}
        env = out.get_container(self.subject.container).plan.services[self.subject.service]
        assert env.environment[f"{self.subject.framework.upper()}_SECRET_KEY"] == "old-key"

    def test_the_upstream_charms_key_is_used_after_a_refresh(
        self, ctx: testing.Context[Any]
    ) -> None:
        """paas-charm keeps the key under ``<framework>_secret_key``; it must not be replaced."""
        field = f"{self.subject.framework}_secret_key"
        upstream = testing.PeerRelation("secret-storage", local_app_data={field: "paas-key"})
        state = with_peer(self.subject.ready_state(), upstream)

        out = ctx.run(ctx.on.upgrade_charm(), state)

        assert out.get_relation(upstream.id).local_app_data == {field: "paas-key"}
        env = out.get_container(self.subject.container).plan.services[self.subject.service]
        assert env.environment[f"{self.subject.framework.upper()}_SECRET_KEY"] == "paas-key"

    def test_config_changed_while_container_unreachable_waits_without_crashing(
        self, ctx: testing.Context[Any]
    ) -> None:
        container = self.subject.container
        unreachable = testing.Container(container, can_connect=False)
        state = self.subject.ready_state(containers={unreachable})

        out = ctx.run(ctx.on.config_changed(), state)

        assert out.unit_status == testing.WaitingStatus(f"waiting for the {container} container")
        assert out.get_container(container).plan.services == {}

    def test_relation_created_requests_the_database_as_leader(
        self, ctx: testing.Context[Any]
    ) -> None:
        db = testing.Relation(self.subject.database)
        state = self.subject.ready_state(
            relations={db, self.subject.peer_relation()}, secrets=set()
        )

        out = ctx.run(ctx.on.relation_created(db), state)

        assert out.get_relation(db.id).local_app_data == {
            "database": self.subject.database_name,
            "requested-secrets": json.dumps(["username", "password", "tls", "tls-ca", "uris"]),
        }
        assert out.unit_status == testing.WaitingStatus(
            f"waiting for the {self.subject.database} database"
        )

    def test_database_relation_broken_blocks_and_stops_the_service(
        self, ctx: testing.Context[Any]
    ) -> None:
        state = self.subject.ready_state()
        started = ctx.run(ctx.on.pebble_ready(state.get_container(self.subject.container)), state)
        db = next(r for r in started.relations if r.endpoint == self.subject.database)

        out = ctx.run(ctx.on.relation_broken(db), started)

        assert out.unit_status == testing.BlockedStatus(
            f"missing required integration: {self.subject.database} (juju integrate"
            f" {self.subject.name} {self.subject.database}-k8s)"
        )
        statuses = out.get_container(self.subject.container).service_statuses
        assert statuses[self.subject.service] == pebble.ServiceStatus.INACTIVE
        # Its workers too (they run with the same credentials).
        assert set(statuses.values()) == {pebble.ServiceStatus.INACTIVE}, statuses

    def test_without_the_database_the_unit_is_blocked(self, ctx: testing.Context[Any]) -> None:
        state = self.subject.ready_state(relations={self.subject.peer_relation()}, secrets=set())

        out = ctx.run(ctx.on.update_status(), state)

        assert out.unit_status == testing.BlockedStatus(
            f"missing required integration: {self.subject.database} (juju integrate"
            f" {self.subject.name} {self.subject.database}-k8s)"
        )

    def test_the_base_is_imported_from_the_charms_own_lib(self) -> None:
        """A packed charm must carry the base: no copy elsewhere may stand in for it."""
        import twelve_factor

        assert Path(twelve_factor.__file__).resolve().is_relative_to(self.subject.root / "lib")

    def test_a_configuration_check_that_cannot_run_blocks_without_starting(
        self, ctx: testing.Context[Any]
    ) -> None:
        """An image without the service's validators must not be started blind."""
        state = self.subject.ready_state()
        workload = state.get_container(self.subject.container)
        command = self.subject.charm.config_check
        assert command is not None
        broken = testing.Exec(command, return_code=1, stderr="ModuleNotFoundError: x\n")
        execs = {e for e in workload.execs if e.command_prefix != command} | {broken}
        state = dataclasses.replace(
            state, containers=frozenset({dataclasses.replace(workload, execs=frozenset(execs))})
        )

        out = ctx.run(ctx.on.pebble_ready(state.get_container(self.subject.container)), state)

        assert out.unit_status == testing.BlockedStatus(
            "the service's configuration check failed; see juju debug-log"
        )
        assert out.get_container(self.subject.container).plan.services == {}
