"""Provider side of ``grafana_dashboard``: the dashboards shipped in the charm's ``src/``.

The leader writes ``dashboards`` = ``{"templates": {"file:<stem>": {...}}, "uuid": ...}``;
each template's ``content`` is the dashboard JSON, LZMA-compressed and base64-encoded. The
``uuid`` changes only when the templates do, so Grafana is not told about changes that are not.
Dashboards carry a 40-hex ``uid`` of their own, which every library version keeps.
"""

from __future__ import annotations

import base64
import hashlib
import json
import lzma
import uuid
from pathlib import Path
from typing import Any

import ops

from twelve_factor.topology import Topology


def compress(content: str) -> str:
    """LZMA then base64, as the library encodes a dashboard."""
    return base64.b64encode(lzma.compress(content.encode())).decode()


def decompress(content: str) -> str:
    """The inverse of :func:`compress`."""
    return lzma.decompress(base64.b64decode(content)).decode()


def alt_uid(charm_name: str, template_id: str) -> str:
    """The short stable id the library derives from the charm and the template id."""
    return hashlib.shake_256(f"{charm_name}-{template_id}".encode()).hexdigest(8)


def templates(directory: Path, topology: Topology) -> dict[str, dict[str, Any]]:
    """One template per ``*.json`` dashboard in the directory."""
    found: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text())
        template_id = f"file:{path.stem}"
        found[template_id] = {
            "charm": topology.charm_name,
            "content": compress(json.dumps(dashboard)),
            "juju_topology": {
                "model": topology.model,
                "model_uuid": topology.model_uuid,
                "application": topology.application,
                "unit": topology.unit,
            },
            "inject_dropdowns": True,
            "dashboard_alt_uid": alt_uid(topology.charm_name, template_id),
        }
    return found


class GrafanaDashboardProvider(ops.Object):
    """Send the charm's dashboards to every related Grafana."""

    def __init__(self, charm: ops.CharmBase, relation_name: str, *, directory: Path):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name
        self.directory = directory
        self._charm = charm
        events = charm.on[relation_name]
        self.framework.observe(events.relation_created, self._on_relation_created)
        self.framework.observe(events.relation_changed, self._on_relation_changed)

    def _on_relation_created(self, _: ops.RelationCreatedEvent) -> None:
        self.publish()

    def _on_relation_changed(self, _: ops.RelationChangedEvent) -> None:
        self.publish()

    def publish(self) -> None:
        """As leader, write the dashboards where they differ from what the databag holds."""
        relations = self.model.relations[self.relation_name]
        if not relations or not self.model.unit.is_leader():
            return
        wanted = templates(self.directory, Topology.of(self._charm))
        for relation in relations:
            databag = relation.data[self.model.app]
            try:
                current = json.loads(databag.get("dashboards", "{}")).get("templates")
            except (json.JSONDecodeError, AttributeError):
                current = None
            if current != wanted:
                databag["dashboards"] = json.dumps(
                    {"templates": wanted, "uuid": str(uuid.uuid4())}
                )
