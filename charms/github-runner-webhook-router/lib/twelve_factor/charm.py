"""The 12-factor charm base: one reconcile path from events to a running, configured workload.

Every event the base observes ends in :meth:`TwelveFactorCharm._reconcile`, which republishes
relation data, checks the prerequisites (configuration, database, secret key, container),
prepares the workload, runs migrations when the service must (re)start, and replans. What the
unit status says is decided in one place, :meth:`TwelveFactorCharm._on_collect_unit_status`.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import ops

from twelve_factor.alert_rules import GENERIC_RULES_DIR
from twelve_factor.dashboards import GrafanaDashboardProvider
from twelve_factor.database import DatabaseKind, DatabaseRequires
from twelve_factor.environment import allowed_hosts, base_url
from twelve_factor.ingress import IngressRequires
from twelve_factor.logging_forwarder import LogForwarder
from twelve_factor.metrics import MetricsEndpointProvider
from twelve_factor.secret_storage import SecretKeyStorage
from twelve_factor.workload import (
    APP_PORT,
    METRICS_PATH,
    METRICS_PORT,
    ConfigRefusedError,
    Framework,
    WebserverConfig,
    Worker,
    WorkloadError,
    build_layer,
    check_configuration,
    health_check,
    layer_changed,
    proxy_environment,
    retired_layer,
    run_migrations,
    service_changed,
    service_is_running,
)

logger = logging.getLogger(__name__)

SECRET_STORAGE = "secret-storage"  # noqa: S105 (a relation name)
INGRESS = "ingress"
METRICS_ENDPOINT = "metrics-endpoint"
LOGGING = "logging"
GRAFANA_DASHBOARD = "grafana-dashboard"
LAYER_LABEL = "twelve-factor"


class InvalidConfigError(Exception):
    """The configuration cannot run the workload; the message is shown as blocked status."""


class AppConfig(Protocol):
    """What the base needs from a charm's configuration dataclass."""

    @property
    def webserver(self) -> WebserverConfig:
        """Gunicorn settings."""
        ...

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """Extra hosts the app answers for (Django's ALLOWED_HOSTS; ignored for Flask)."""
        ...

    def environment(self) -> dict[str, str]:
        """The variables made from config options (``<PREFIX><OPTION>``)."""
        ...


ConfigT = TypeVar("ConfigT", bound=AppConfig)


@dataclass(frozen=True)
class DatabaseSpec:
    """The database integration a charm requires."""

    relation: str
    kind: DatabaseKind


# The charm an operator integrates for each database kind (the one these charms are tested with).
DATABASE_CHARMS = {"postgresql": "postgresql-k8s", "mongodb": "mongodb-k8s"}


def missing_database_message(charm: TwelveFactorCharm[Any]) -> str:
    """The blocked status without the database: what is missing and the command that fixes it."""
    spec = charm.database_spec
    if spec is None:  # pragma: no cover (only asked of charms with a database)
        return ""
    return (
        f"missing required integration: {spec.relation} "
        f"(juju integrate {charm.app.name} {DATABASE_CHARMS[spec.kind]})"
    )


class TwelveFactorCharm(ops.CharmBase, Generic[ConfigT]):
    """Base of a Django or Flask charm; subclasses set the class attributes and read config."""

    layout: ClassVar[Framework]
    database_spec: ClassVar[DatabaseSpec | None] = None
    # The application's own Prometheus port, when it serves one: inside the rock the web
    # server's statsd exporter already holds METRICS_PORT, so the app is told this port through
    # <PREFIX>METRICS_PORT and Prometheus gets a second scrape job for it.
    app_metrics_port: ClassVar[int | None] = None
    # The service's own configuration check, run in the workload (see check_configuration)
    # before every (re)start: exit 2 and a message on standard error refuse the configuration.
    config_check: ClassVar[tuple[str, ...] | None] = None
    # Every worker service the charm may run (see _workers): one it no longer wants is stopped
    # and kept from starting again.
    worker_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self._secret_storage = SecretKeyStorage(
            self, SECRET_STORAGE, field=f"{self.layout.name}_secret_key"
        )
        self._ingress = IngressRequires(self, INGRESS, port=APP_PORT)
        self._metrics = MetricsEndpointProvider(
            self,
            METRICS_ENDPOINT,
            ports=(METRICS_PORT,) + ((self.app_metrics_port,) if self.app_metrics_port else ()),
            path=METRICS_PATH,
            rule_dirs=(GENERIC_RULES_DIR, self.charm_source / "prometheus_alert_rules"),
        )
        self._logging = LogForwarder(self, LOGGING, container=self.layout.container)
        self._dashboards = GrafanaDashboardProvider(
            self, GRAFANA_DASHBOARD, directory=self.charm_source / "grafana_dashboards"
        )
        self._database: DatabaseRequires | None = None
        if self.database_spec is not None:
            # The application name unchanged, as paas-charm asks: the database's consumers
            # (and a refresh from the upstream charm) find the data under that name.
            self._database = DatabaseRequires(
                self,
                self.database_spec.relation,
                kind=self.database_spec.kind,
                database=self.app.name,
            )
        # Set by _reconcile when the workload could not be started during this dispatch.
        self._workload_problem: ops.StatusBase | None = None

        self.framework.observe(self.on[self.layout.container].pebble_ready, self._on_pebble_ready)
        self.framework.observe(self.on.config_changed, self._on_config_changed)
        self.framework.observe(self.on.upgrade_charm, self._on_upgrade_charm)
        self.framework.observe(self.on.leader_elected, self._on_leader_elected)
        self.framework.observe(self.on.update_status, self._on_update_status)
        storage = self.on[SECRET_STORAGE]
        self.framework.observe(storage.relation_created, self._on_secret_storage_relation_created)
        self.framework.observe(storage.relation_changed, self._on_secret_storage_relation_changed)
        self.framework.observe(
            storage.relation_departed, self._on_secret_storage_relation_departed
        )
        self.framework.observe(self.on.secret_changed, self._on_secret_changed)
        if self._database is not None:
            self.framework.observe(self._database.on.database_created, self._on_database_created)
            self.framework.observe(self._database.on.endpoints_changed, self._on_endpoints_changed)
            self.framework.observe(
                self.on[self._database.relation_name].relation_broken,
                self._on_database_relation_broken,
            )
        self.framework.observe(self._ingress.on.ready, self._on_ingress_ready)
        self.framework.observe(self._ingress.on.revoked, self._on_ingress_revoked)
        self.framework.observe(
            self.on[METRICS_ENDPOINT].relation_joined, self._on_metrics_endpoint_relation_joined
        )
        self.framework.observe(self.on.rotate_secret_key_action, self._on_rotate_secret_key_action)
        self.framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)

    # Handlers, in the order observed. Each one converges on the same state.

    def _on_pebble_ready(self, _: ops.PebbleReadyEvent) -> None:
        self._reconcile(refresh=True)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        self._reconcile(refresh=True)

    def _on_upgrade_charm(self, _: ops.UpgradeCharmEvent) -> None:
        self._reconcile(refresh=True)

    def _on_leader_elected(self, _: ops.LeaderElectedEvent) -> None:
        self._reconcile()

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        self._reconcile()

    def _on_secret_storage_relation_created(self, _: ops.RelationCreatedEvent) -> None:
        self._reconcile()

    def _on_secret_storage_relation_changed(self, _: ops.RelationChangedEvent) -> None:
        self._reconcile()

    def _on_secret_storage_relation_departed(self, _: ops.RelationDepartedEvent) -> None:
        self._reconcile()

    def _on_secret_changed(self, _: ops.SecretChangedEvent) -> None:
        self._reconcile()

    def _on_database_created(self, _: ops.RelationEvent) -> None:
        self._reconcile()

    def _on_endpoints_changed(self, _: ops.RelationEvent) -> None:
        self._reconcile()

    def _on_database_relation_broken(self, _: ops.RelationBrokenEvent) -> None:
        self._reconcile()

    def _on_ingress_ready(self, _: ops.RelationEvent) -> None:
        self._reconcile()

    def _on_ingress_revoked(self, _: ops.RelationEvent) -> None:
        self._reconcile()

    def _on_metrics_endpoint_relation_joined(self, _: ops.RelationJoinedEvent) -> None:
        self._reconcile()

    def _on_rotate_secret_key_action(self, event: ops.ActionEvent) -> None:
        if not self.unit.is_leader():
            event.fail("only the leader can rotate the secret key: run the action on the leader")
            return
        if self._secret_storage.relation is None:
            event.fail(f"the {SECRET_STORAGE} peer relation is not set up yet; try again later")
            return
        self._secret_storage.rotate()
        self._reconcile()
        event.set_results({"status": "success"})

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        for status in self._prerequisite_statuses():
            event.add_status(status)
        container = self.unit.get_container(self.layout.container)
        if not container.can_connect():
            event.add_status(ops.WaitingStatus(f"waiting for the {container.name} container"))
        elif self._workload_problem is not None:
            event.add_status(self._workload_problem)
        elif not service_is_running(container, self.layout.service):
            event.add_status(ops.WaitingStatus(f"waiting for the {self.layout.service} service"))
        event.add_status(ops.ActiveStatus())

    @property
    def ingress_ready(self) -> bool:
        """Whether the ingress provider has sent a URL (requests then reach us through it)."""
        return self._ingress.url is not None

    @property
    def charm_source(self) -> Path:
        """The charm's ``src/`` folder (where its module is), also holding dashboards and rules."""
        return Path(inspect.getfile(type(self))).resolve().parent

    # To be provided by the charm.

    def _read_config(self) -> ConfigT:
        """Read and validate the configuration.

        Raises:
            InvalidConfigError: an option is missing or invalid.
        """
        raise NotImplementedError

    def _prepare_workload(
        self, container: ops.Container, config: ConfigT, *, refresh: bool
    ) -> dict[str, str]:
        """Put what the workload needs in the container before it (re)starts.

        Args:
            container: the workload container, reachable.
            config: the validated configuration.
            refresh: the event may have changed what the workload needs (pebble-ready after a
                pod restart, config-changed, upgrade), so rebuild rather than trust the files.

        Returns:
            Extra environment variables for the workload.

        Raises:
            WorkloadError: the workload cannot be prepared.
        """
        del container, config, refresh
        return {}

    def _workers(self, config: ConfigT, environment: dict[str, str]) -> tuple[Worker, ...]:
        """The processes to run beside the web server, all named in ``worker_names``.

        Args:
            config: the validated configuration.
            environment: the web server's environment (the workers get it too).

        Raises:
            WorkloadError: a worker cannot be configured (the message is the blocked status).
        """
        del config, environment
        return ()

    def _charm_environment(self, config: ConfigT) -> dict[str, str]:
        """Variables the charm derives from the model for its service (none by default).

        Read on every reconcile, after the options and integrations, so a change of what they
        depend on (an integration appearing or leaving) restarts the service with the new value.
        """
        del config
        return {}

    # The reconcile path.

    def _reconcile(self, *, refresh: bool = False) -> None:
        """Bring relation data, files and the Pebble plan in line with the model."""
        self._publish()
        try:
            config = self._read_config()
        except InvalidConfigError as exc:
            logger.warning("not (re)starting the workload: %s", exc)
            return
        container = self.unit.get_container(self.layout.container)
        if self._prerequisite_statuses():
            if self._database_required_but_missing() and container.can_connect():
                self._stop_service(container)
            return
        if not container.can_connect():
            logger.info("the %s container is not reachable yet", container.name)
            return
        try:
            extra = self._prepare_workload(container, config, refresh=refresh)
            environment = self._environment(config) | extra
            workers = self._workers(config, environment)
            layer = build_layer(self.layout, environment, config.webserver, workers)
            changed = service_changed(container, layer, self.layout.service)
            if (
                changed
                or not service_is_running(container, self.layout.service)
                or layer_changed(container, layer)
            ):
                if self.config_check is not None:
                    # The check sees the workers' variables too: the service validates them.
                    checked = environment.copy()
                    for worker in workers:
                        checked |= worker.environment
                    check_configuration(self.layout, container, list(self.config_check), checked)
                if changed or not service_is_running(container, self.layout.service):
                    run_migrations(self.layout, container, environment)
                container.add_layer(LAYER_LABEL, layer, combine=True)
                container.replan()
            self._retire_workers(container, {worker.name for worker in workers})
        except ConfigRefusedError as exc:
            logger.error("the service refuses the configuration: %s", exc)
            self._workload_problem = ops.BlockedStatus(f"{exc} (fix the matching charm option)")
            return
        except WorkloadError as exc:
            logger.error("cannot start the workload: %s", exc)
            self._workload_problem = ops.BlockedStatus(str(exc))
            return
        # Configured: let the application's Kubernetes service reach this unit.
        self.unit.set_ports(APP_PORT)
        self._ingress.port_opened = True
        self._ingress.publish()

    def _retire_workers(self, container: ops.Container, wanted: set[str]) -> None:
        """Stop the workers the configuration no longer asks for, and keep them stopped."""
        plan = container.get_plan()
        retired = [
            name
            for name in self.worker_names
            if name not in wanted
            and name in plan.services
            and plan.services[name].startup != "disabled"
        ]
        if not retired:
            return
        logger.info("stopping the workers no longer configured: %s", ", ".join(retired))
        checks = [health_check(name) for name in retired if health_check(name) in plan.checks]
        container.add_layer(LAYER_LABEL, retired_layer(retired, checks), combine=True)
        for name in retired:
            if service_is_running(container, name):
                container.stop(name)
        if checks:
            container.stop_checks(*checks)

    def _publish(self) -> None:
        """Republish everything the unit says over its relations (cheap and idempotent)."""
        self._secret_storage.ensure()
        self._ingress.publish()
        self._metrics.publish()
        self._logging.publish()
        self._dashboards.publish()
        if self._database is not None:
            self._database.request()

    def _prerequisite_statuses(self) -> list[ops.StatusBase]:
        """What stops the workload from running, as statuses (empty when nothing does)."""
        statuses: list[ops.StatusBase] = []
        try:
            self._read_config()
        except InvalidConfigError as exc:
            statuses.append(ops.BlockedStatus(str(exc)))
        if self._database is not None:
            relation = self._database.relation_name
            if self._database.relation is None:
                statuses.append(ops.BlockedStatus(missing_database_message(self)))
            elif self._database.connection() is None:
                statuses.append(ops.WaitingStatus(f"waiting for the {relation} database"))
        if self._secret_storage.relation is None:
            statuses.append(ops.WaitingStatus(f"waiting for the {SECRET_STORAGE} peer relation"))
        elif self._secret_storage.secret_key() is None:
            statuses.append(ops.WaitingStatus("waiting for the leader to set the secret key"))
        return statuses

    def _database_required_but_missing(self) -> bool:
        return self._database is not None and self._database.connection() is None

    def _stop_service(self, container: ops.Container) -> None:
        """Stop the workload whose database credentials are gone (they no longer work).

        The workers too: they run with the same credentials. The next successful reconcile
        starts them again (replan starts every enabled service).
        """
        for name in (self.layout.service, *self.worker_names):
            if service_is_running(container, name):
                logger.info("stopping %s: its database is gone", name)
                container.stop(name)

    def _environment(self, config: ConfigT) -> dict[str, str]:
        """The full workload environment: config options, app settings, integrations."""
        prefix = self.layout.prefix
        url = base_url(self._ingress.url, app=self.app.name, model=self.model.name, port=APP_PORT)
        environment = proxy_environment(os.environ) | config.environment()
        environment[f"{prefix}SECRET_KEY"] = self._secret_storage.secret_key() or ""
        environment[f"{prefix}BASE_URL"] = url
        if self.app_metrics_port:
            environment[f"{prefix}METRICS_PORT"] = str(self.app_metrics_port)
        if self.layout.name == "django":
            environment["DJANGO_ALLOWED_HOSTS"] = allowed_hosts(url, config.allowed_hosts)
        if self._database is not None:
            connection = self._database.connection()
            if connection is not None:
                environment |= connection.environment()
        return environment | self._charm_environment(config)

    def _workload_environment(self) -> dict[str, str] | None:
        """The environment the running service has (for commands run from actions)."""
        container = self.unit.get_container(self.layout.container)
        if not container.can_connect():
            return None
        service = container.get_plan().services.get(self.layout.service)
        if service is None:
            return None
        return dict(service.environment)
