"""Provider side of ``prometheus_scrape``: where the metrics are, and what to alert on.

The leader publishes ``scrape_metadata``, ``scrape_jobs`` and ``alert_rules`` (JSON) in the
application databag; every unit publishes its address and name. ``*`` in a target stands for
each unit's address.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import ops

from twelve_factor.alert_rules import alert_rules
from twelve_factor.ingress import unit_address
from twelve_factor.topology import Topology


class MetricsEndpointProvider(ops.Object):
    """Publish one scrape job per metrics port (the web server's, and the app's own if any)."""

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str,
        *,
        ports: tuple[int, ...],
        path: str,
        rule_dirs: Sequence[Path],
    ):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name
        self.ports = ports
        self.path = path
        self.rule_dirs = tuple(rule_dirs)
        self._charm = charm
        events = charm.on[relation_name]
        self.framework.observe(events.relation_created, self._on_relation_created)
        self.framework.observe(events.relation_joined, self._on_relation_joined)

    def _on_relation_created(self, _: ops.RelationCreatedEvent) -> None:
        self.publish()

    def _on_relation_joined(self, _: ops.RelationJoinedEvent) -> None:
        self.publish()

    def scrape_jobs(self) -> list[dict[str, object]]:
        """The jobs Prometheus should run."""
        return [
            {"metrics_path": self.path, "static_configs": [{"targets": [f"*:{port}"]}]}
            for port in self.ports
        ]

    def publish(self) -> None:
        """Write the scrape data to every metrics relation; idempotent."""
        relations = self.model.relations[self.relation_name]
        if not relations:
            return
        topology = Topology.of(self._charm)
        address = unit_address(self.model, self.relation_name)
        app_data = {
            "scrape_metadata": json.dumps(topology.metadata()),
            "scrape_jobs": json.dumps(self.scrape_jobs()),
            "alert_rules": alert_rules(self.rule_dirs, topology),
        }
        for relation in relations:
            if self.model.unit.is_leader():
                relation.data[self.model.app].update(app_data)
            unit_data = {"prometheus_scrape_unit_name": self.model.unit.name}
            if address:
                unit_data["prometheus_scrape_unit_address"] = address
            relation.data[self.model.unit].update(unit_data)
