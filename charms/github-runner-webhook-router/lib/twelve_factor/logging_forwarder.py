"""Requirer side of ``loki_push_api`` (endpoint ``logging``): Pebble forwards the logs to Loki.

This is what the library's ``LogForwarder`` does (paas-charm uses it on Juju 3.4 and later):
each Loki unit publishes ``endpoint`` = ``{"url": ".../loki/api/v1/push"}`` in its unit databag;
the charm adds a Pebble layer ``<container>-log-forwarding`` with one ``loki`` log target per
Loki unit for all services, labelled with the Juju topology, and the leader writes ``metadata``
and ``alert_rules`` (none: ``{}``) once a Loki endpoint is known. A target whose Loki unit left
is kept in the plan but forwards nothing (``services: ["-all"]``), as Pebble cannot drop one.
"""

from __future__ import annotations

import json
import logging
from typing import cast

import ops

from twelve_factor.topology import Topology

logger = logging.getLogger(__name__)


class LogForwarder(ops.Object):
    """Keep the workload container's log targets in line with the related Loki units."""

    def __init__(self, charm: ops.CharmBase, relation_name: str, *, container: str):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name
        self.container_name = container
        self._charm = charm
        events = charm.on[relation_name]
        for event in (events.relation_joined, events.relation_changed, events.relation_departed):
            self.framework.observe(event, self._on_relation_event)
        self.framework.observe(events.relation_broken, self._on_relation_broken)

    @property
    def layer_name(self) -> str:
        """The Pebble layer holding the log targets."""
        return f"{self.container_name}-log-forwarding"

    def _on_relation_event(self, _: ops.RelationEvent) -> None:
        self.publish()

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        self.publish(leaving=event.relation)

    def endpoints(self, leaving: ops.Relation | None = None) -> dict[str, str]:
        """Loki unit name -> push URL, for every Loki unit that published one."""
        found: dict[str, str] = {}
        for relation in self.model.relations[self.relation_name]:
            if leaving is not None and relation.id == leaving.id:
                continue
            for unit in relation.units:
                raw = relation.data[unit].get("endpoint")
                try:
                    url = json.loads(raw).get("url") if raw else None
                except (json.JSONDecodeError, AttributeError):
                    logger.warning("ignoring malformed Loki endpoint from %s", unit.name)
                    continue
                if isinstance(url, str) and url:
                    found[unit.name] = url
        return found

    def publish(self, leaving: ops.Relation | None = None) -> None:
        """Write the leader's data and update the log targets; idempotent."""
        topology = Topology.of(self._charm)
        endpoints = self.endpoints(leaving)
        if endpoints and self.model.unit.is_leader():
            for relation in self.model.relations[self.relation_name]:
                relation.data[self.model.app].update(
                    {"metadata": json.dumps(topology.metadata()), "alert_rules": "{}"}
                )
        container = self._charm.unit.get_container(self.container_name)
        if not container.can_connect():
            return
        self._apply(container, endpoints, topology)

    def _apply(
        self, container: ops.Container, endpoints: dict[str, str], topology: Topology
    ) -> None:
        labels = {
            "product": "Juju",
            "charm": topology.charm_name,
            "juju_model": topology.model,
            "juju_model_uuid": topology.model_uuid,
            "juju_application": topology.application,
            "juju_unit": topology.unit,
            "job": f"juju_{topology.identifier}",
        }
        current = container.get_plan().to_dict().get("log-targets", {})
        targets: dict[str, dict[str, object]] = {}
        for name, url in endpoints.items():
            targets[name] = {
                "override": "replace",
                "type": "loki",
                "location": url,
                "services": ["all"],
                "labels": labels,
            }
        for name, target in current.items():
            if name not in targets and target.get("services") != ["-all"]:
                targets[name] = {**target, "override": "replace", "services": ["-all"]}
        if not targets:
            return
        layer = ops.pebble.Layer(cast(ops.pebble.LayerDict, {"log-targets": targets}))
        container.add_layer(self.layer_name, layer, combine=True)
