"""Every relation of a twelve-factor charm, against the data the real libraries write.

A charm's ``tests/test_interop.py`` subclasses :class:`InteropContract` (setting ``subject``).
The fixtures (``<repo>/../shared/interop``, see :mod:`testing_support.interop`) were recorded
from the upstream libraries and peer charms: the peer's databags are loaded as the remote side
and what our charm derives is compared with what the other side's library derived; where a
library plays our role, our databags are compared with what it wrote, field by field. Fixtures
recorded for the router carry its name; for the other charm the name is substituted.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import pytest
from ops import testing
from twelve_factor.dashboards import decompress

from testing_support.interop import INTEROP, MODEL, fixture, fixtures, granted_secrets
from testing_support.subject import CharmUnderTest

RECORDED_APP = "github-runner-webhook-router"
RECORDED_CONTAINER = "flask-app"
UNIT_ADDRESS = "127.0.0.31"
FOLLOWER_ADDRESS = "127.0.0.32"

# A v1 provider answering a *v1* request: our requirer speaks v0 and never sends one, so the
# answer (inside "requests") is not for us; its answer to a v0 request is tested.
NOT_FOR_A_V0_REQUIRER = {"postgresql_client/v1-provider-lp3-for-v1-request.json"}


def provider_fixtures(interface: str) -> list[str]:
    """The database providers' answers a v0 requirer can receive."""
    names = fixtures(interface, "provider-")
    names += sorted(f"{interface}/{p.name}" for p in (INTEROP / interface).glob("v1-provider-*"))
    return [name for name in names if name not in NOT_FOR_A_V0_REQUIRER]


def with_user_secret(names: list[str]) -> list[str]:
    """The answers that carry the credentials in a Juju secret."""
    return [
        name
        for name in names
        if any(s["label"].endswith(".user.secret") for s in fixture(name)["written"]["secrets"])
    ]


def renamed(value: Any, app: str, container: str) -> Any:
    """A recorded value with the recorded application's names replaced by ours."""
    text = json.dumps(value).replace(RECORDED_CONTAINER, container).replace(RECORDED_APP, app)
    return json.loads(text)


JUJU_UNIT_KEYS = ("egress-subnets", "ingress-address", "private-address")


def unit_data(relation: testing.RelationBase) -> dict[str, str]:
    """Our unit databag without Juju's own keys (the recordings leave them out too)."""
    data: dict[str, str] = dict(relation.local_unit_data)
    return {k: v for k, v in data.items() if k not in JUJU_UNIT_KEYS}


def app_data(relation: testing.RelationBase) -> dict[str, str]:
    """Our application databag."""
    data: dict[str, str] = dict(relation.local_app_data)
    return data


def network(binding: str, address: str) -> testing.Network:
    """The unit's address on one binding, as the recordings pinned it."""
    return testing.Network(
        binding,
        bind_addresses=[testing.BindAddress([testing.Address(address)])],
        ingress_addresses=[address],
    )


class InteropContract:
    """Interoperation tests every twelve-factor charm passes, one per relation and fixture."""

    subject: ClassVar[CharmUnderTest]

    # Helpers.

    def state(self, *relations: testing.RelationBase, **overrides: Any) -> testing.State:
        """The ready unit in the fixtures' model, with more relations."""
        state = self.subject.ready_state(**overrides)
        addresses = {network(b, UNIT_ADDRESS) for b in ("ingress", "metrics-endpoint")}
        return dataclasses.replace(
            state,
            model=MODEL,
            relations=state.relations | set(relations),
            networks=frozenset(addresses),
        )

    def environment(self, state: testing.State) -> dict[str, str]:
        container = state.get_container(self.subject.container)
        return dict(container.plan.services[self.subject.service].environment)

    def renamed(self, value: Any) -> Any:
        return renamed(value, self.subject.name, self.subject.container)

    # Database (data_interfaces v0).

    def test_database_request_is_what_the_library_writes(self, ctx: testing.Context[Any]) -> None:
        """Same keys and values as data_interfaces LIBPATCH 29, app databag only."""
        recorded = fixture(f"{self.subject.database}_client/requirer-v0-lp29.json")["written"]
        db = testing.Relation(
            self.subject.database, remote_app_name=f"{self.subject.database}-k8s"
        )
        state = self.state(relations={db, self.subject.peer_relation()}, secrets=set())

        out = ctx.run(ctx.on.relation_created(db), state)

        assert out.get_relation(db.id).local_app_data == recorded["app_data"]
        assert unit_data(out.get_relation(db.id)) == recorded["unit_data"]

    def check_database_answer(self, ctx: testing.Context[Any], name: str) -> None:
        recorded = fixture(name)
        written = recorded["written"]
        db = testing.Relation(
            self.subject.database,
            remote_app_name=recorded["writer"]["app"],
            remote_app_data=written["app_data"],
        )
        secrets = granted_secrets(recorded)
        state = self.state(relations={db, self.subject.peer_relation()}, secrets=secrets)

        out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), state)

        user = next(
            (s["content"] for s in written["secrets"] if s["label"].endswith(".user.secret")),
            written["app_data"],
        )
        prefix = self.subject.database.upper()
        environment = self.environment(out)
        assert environment[f"{prefix}_DB_CONNECT_STRING"] == user["uris"]
        assert environment[f"{prefix}_DB_USERNAME"] == user["username"]
        assert environment[f"{prefix}_DB_PASSWORD"] == user["password"]
        assert environment[f"{prefix}_DB_NAME"] == self.subject.database_name
        assert out.unit_status == testing.ActiveStatus()

    def check_database_secret_revision(self, ctx: testing.Context[Any], name: str) -> None:
        """A unit tracking the first revision of the user secret still reads the final one."""
        recorded = fixture(name)
        written = recorded["written"]
        [user] = [s for s in written["secrets"] if s["label"].endswith(".user.secret")]
        secret = testing.Secret(
            id=user["id"],
            tracked_content=user["revisions_written"][0],
            latest_content=user["content"],
        )
        others = {s for s in granted_secrets(recorded) if s.id != user["id"]}
        db = testing.Relation(
            self.subject.database,
            remote_app_name=recorded["writer"]["app"],
            remote_app_data=written["app_data"],
        )
        state = self.state(relations={db, self.subject.peer_relation()}, secrets={secret, *others})

        out = ctx.run(ctx.on.secret_changed(secret), state)

        prefix = self.subject.database.upper()
        assert self.environment(out)[f"{prefix}_DB_CONNECT_STRING"] == user["content"]["uris"]

    # Ingress (traefik_k8s v2).

    def test_ingress_request_is_what_paas_charm_writes(
        self, ctx: testing.Context[Any], monkeypatch: Any
    ) -> None:
        """IngressPerAppRequirer LIBPATCH 21 as paas-charm builds it, the port opened."""
        recorded = self.renamed(fixture("ingress/requirer-v2-lp21-paas.json")["written"])
        monkeypatch.setattr("socket.getfqdn", lambda *_: UNIT_ADDRESS)
        ingress = testing.Relation("ingress", remote_app_name="traefik-k8s")
        # A configured unit opened the port on an earlier event.
        state = self.state(ingress, opened_ports={testing.TCPPort(8000)})

        out = ctx.run(ctx.on.relation_changed(ingress, remote_unit=0), state)

        relation = out.get_relation(ingress.id)
        assert relation.local_app_data == recorded["app_data"]
        assert unit_data(relation) == recorded["unit_data"]

    def test_a_follower_publishes_only_its_unit_data(
        self, ctx: testing.Context[Any], monkeypatch: Any
    ) -> None:
        recorded = self.renamed(fixture("ingress/requirer-v2-lp21-paas.json")["written"])
        monkeypatch.setattr("socket.getfqdn", lambda *_: FOLLOWER_ADDRESS)
        ingress = testing.Relation("ingress", remote_app_name="traefik-k8s")
        state = dataclasses.replace(
            self.state(ingress, leader=False),
            networks=frozenset({network("ingress", FOLLOWER_ADDRESS)}),
        )

        out = ctx.run(ctx.on.relation_changed(ingress, remote_unit=0), state)

        assert out.get_relation(ingress.id).local_app_data == {}
        assert unit_data(out.get_relation(ingress.id)) == recorded["follower_unit_data"]

    @pytest.mark.parametrize(
        "name",
        [
            "ingress/provider-traefik-lp21-path.json",
            "ingress/provider-traefik-lp21-path-tls.json",
            "ingress/provider-traefik-lp21-all-fields.json",
        ],
    )
    def test_the_url_traefik_publishes_is_the_base_url(
        self, ctx: testing.Context[Any], name: str
    ) -> None:
        written = fixture(name)["written"]
        ingress = testing.Relation(
            "ingress", remote_app_name="traefik-k8s", remote_app_data=written["app_data"]
        )

        out = ctx.run(ctx.on.relation_changed(ingress, remote_unit=0), self.state(ingress))

        url = json.loads(written["app_data"]["ingress"])["url"]
        prefix = self.subject.framework.upper()
        assert self.environment(out)[f"{prefix}_BASE_URL"] == url

    # Metrics (prometheus_scrape).

    def test_scrape_data_has_the_shape_prometheus_reads(self, ctx: testing.Context[Any]) -> None:
        recorded = fixture("prometheus_scrape/provider-lp44-two-jobs.json")["written"]
        metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")

        out = ctx.run(ctx.on.relation_joined(metrics, remote_unit=0), self.state(metrics))

        relation = out.get_relation(metrics.id)
        assert set(app_data(relation)) == set(recorded["app_data"])
        assert json.loads(app_data(relation)["scrape_metadata"]) == self.renamed(
            json.loads(recorded["app_data"]["scrape_metadata"])
        )
        jobs = json.loads(app_data(relation)["scrape_jobs"])
        recorded_jobs = json.loads(recorded["app_data"]["scrape_jobs"])
        assert jobs == recorded_jobs[: len(jobs)]  # 9102 (gunicorn), 9103 (the app's own)
        assert unit_data(relation) == self.renamed(recorded["unit_data"])
        groups = json.loads(app_data(relation)["alert_rules"])["groups"]
        identifier = f"ci_4c1b2a3d_{self.subject.name.replace('-', '_')}_"
        labels = json.loads(recorded["app_data"]["alert_rules"])["groups"][0]["rules"][0]
        for group in groups:
            assert group["name"].startswith(identifier)
            assert group["name"].endswith("_rules")
            for rule in group["rules"]:
                topology = {k: v for k, v in rule["labels"].items() if k.startswith("juju_")}
                expected = {k: v for k, v in labels["labels"].items() if k.startswith("juju_")}
                assert topology == self.renamed(expected)
        alerts = {rule["alert"] for group in groups for rule in group["rules"]}
        assert {"TargetDown", "HighServerErrorRatio"} <= alerts

    # Logging (loki_push_api, as LogForwarder).

    def test_logs_are_forwarded_to_the_loki_endpoint(self, ctx: testing.Context[Any]) -> None:
        loki = fixture("loki_push_api/provider-loki-k8s-lp30.json")["written"]
        forwarder = self.renamed(fixture("loki_push_api/requirer-logforwarder-v1-lp30.json"))
        logging = testing.Relation(
            "logging",
            remote_app_name="loki-k8s",
            remote_app_data=loki["app_data"],
            remote_units_data={0: loki["unit_data"]},
        )

        out = ctx.run(ctx.on.relation_changed(logging, remote_unit=0), self.state(logging))

        assert out.get_relation(logging.id).local_app_data == forwarder["written"]["app_data"]
        assert unit_data(out.get_relation(logging.id)) == forwarder["written"]["unit_data"]
        [(layer_name, layer)] = forwarder["workload"]["pebble_layers_added"].items()
        container = out.get_container(self.subject.container)
        assert container.layers[layer_name].to_dict()["log-targets"] == layer["log-targets"]
        assert (
            container.plan.to_dict()["log-targets"]["loki-k8s/0"]["location"]
            == (json.loads(loki["unit_data"]["endpoint"])["url"])
        )

    def test_nothing_is_written_before_loki_sends_its_endpoint(
        self, ctx: testing.Context[Any]
    ) -> None:
        logging = testing.Relation("logging", remote_app_name="loki-k8s")

        out = ctx.run(ctx.on.relation_joined(logging, remote_unit=0), self.state(logging))

        assert out.get_relation(logging.id).local_app_data == {}
        assert "log-targets" not in out.get_container(self.subject.container).plan.to_dict()

    def test_a_departed_loki_unit_gets_no_more_logs(self, ctx: testing.Context[Any]) -> None:
        loki = fixture("loki_push_api/provider-loki-k8s-lp30.json")["written"]
        logging = testing.Relation(
            "logging", remote_app_name="loki-k8s", remote_units_data={0: loki["unit_data"]}
        )
        started = ctx.run(ctx.on.relation_changed(logging, remote_unit=0), self.state(logging))
        gone = dataclasses.replace(logging, remote_units_data={})
        state = dataclasses.replace(
            started, relations=(started.relations - {started.get_relation(logging.id)}) | {gone}
        )

        out = ctx.run(ctx.on.relation_departed(gone, remote_unit=0), state)

        target = out.get_container(self.subject.container).plan.to_dict()["log-targets"]
        assert target["loki-k8s/0"]["services"] == ["-all"]

    def test_a_broken_logging_relation_stops_the_forwarding(
        self, ctx: testing.Context[Any]
    ) -> None:
        loki = fixture("loki_push_api/provider-loki-k8s-lp30.json")["written"]
        logging = testing.Relation(
            "logging", remote_app_name="loki-k8s", remote_units_data={0: loki["unit_data"]}
        )
        started = ctx.run(ctx.on.relation_changed(logging, remote_unit=0), self.state(logging))

        out = ctx.run(ctx.on.relation_broken(started.get_relation(logging.id)), started)

        target = out.get_container(self.subject.container).plan.to_dict()["log-targets"]
        assert target["loki-k8s/0"]["services"] == ["-all"]

    def published_alerts(self, ctx: testing.Context[Any]) -> set[str]:
        """The names of the alert rules the unit sends Prometheus."""
        metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus-k8s")

        out = ctx.run(ctx.on.relation_joined(metrics, remote_unit=0), self.state(metrics))

        groups = json.loads(app_data(out.get_relation(metrics.id))["alert_rules"])["groups"]
        return {rule["alert"] for group in groups for rule in group["rules"]}

    # Dashboards (grafana_dashboard).

    def test_dashboards_have_the_shape_grafana_reads(self, ctx: testing.Context[Any]) -> None:
        recorded = fixture("grafana_dashboard/provider-lp48.json")["written"]
        [recorded_template] = json.loads(recorded["app_data"]["dashboards"])["templates"].values()
        grafana = testing.Relation("grafana-dashboard", remote_app_name="grafana-k8s")

        out = ctx.run(ctx.on.relation_created(grafana), self.state(grafana))

        sent = json.loads(app_data(out.get_relation(grafana.id))["dashboards"])
        assert set(sent) == {"templates", "uuid"}
        assert list(sent["templates"]) == ["file:app"]  # one dashboard per service
        template = sent["templates"]["file:app"]
        assert set(template) == set(recorded_template)
        assert template["charm"] == self.subject.name
        assert template["juju_topology"] == self.renamed(recorded_template["juju_topology"])
        assert template["inject_dropdowns"] is True
        again = ctx.run(ctx.on.relation_changed(out.get_relation(grafana.id), remote_unit=0), out)
        assert json.loads(app_data(again.get_relation(grafana.id))["dashboards"]) == sent

    def shipped_dashboard(self, ctx: testing.Context[Any]) -> dict[str, Any]:
        """The dashboard as Grafana receives it, checked to be the file the charm ships."""
        grafana = testing.Relation("grafana-dashboard", remote_app_name="grafana-k8s")

        out = ctx.run(ctx.on.relation_created(grafana), self.state(grafana))

        sent = json.loads(app_data(out.get_relation(grafana.id))["dashboards"])
        dashboard: dict[str, Any] = json.loads(
            decompress(sent["templates"]["file:app"]["content"])
        )
        path = self.subject.root / "src" / "grafana_dashboards" / "app.json"
        assert dashboard == json.loads(path.read_text())
        assert len(dashboard["uid"]) == 40  # a Path40 uid: kept as is by every library version
        return dashboard
