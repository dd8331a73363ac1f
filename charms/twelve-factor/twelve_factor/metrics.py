"""Provider side of ``prometheus_scrape``: tell Prometheus where the workload's metrics are.

The leader publishes ``scrape_metadata`` and ``scrape_jobs`` (JSON) in the application databag;
every unit publishes its address and name. ``*`` in a target stands for each unit's address.
"""

from __future__ import annotations

import json

import ops

from twelve_factor.ingress import unit_address


class MetricsEndpointProvider(ops.Object):
    """Publish one scrape job per metrics port (the web server's, and the app's own if any)."""

    def __init__(
        self, charm: ops.CharmBase, relation_name: str, *, ports: tuple[int, ...], path: str
    ):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name
        self.ports = ports
        self.path = path
        self._charm_name = charm.meta.name
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
        metadata = {
            "model": self.model.name,
            "model_uuid": self.model.uuid,
            "application": self.model.app.name,
            "unit": self.model.unit.name,
            "charm_name": self._charm_name,
        }
        address = unit_address(self.model, self.relation_name)
        for relation in self.model.relations[self.relation_name]:
            if self.model.unit.is_leader():
                relation.data[self.model.app].update(
                    {
                        "scrape_metadata": json.dumps(metadata),
                        "scrape_jobs": json.dumps(self.scrape_jobs()),
                    }
                )
            unit_data = {"prometheus_scrape_unit_name": self.model.unit.name}
            if address:
                unit_data["prometheus_scrape_unit_address"] = address
            relation.data[self.model.unit].update(unit_data)
