"""Requirer side of the ``ingress`` integration, version 2 of the protocol.

Every databag value is JSON-encoded. The leader publishes ``model``, ``name``, ``port``,
``strip-prefix`` and, once the unit has opened the port, ``is_port_open`` in the application
databag (defaults such as ``scheme: http`` are left out, as the library does); every unit
publishes ``host`` (its FQDN: the pod's own name in the cluster's DNS domain, whatever that
domain is) and ``ip`` in its own.
The provider answers ``ingress`` = ``{"url": ...}``. Data is republished on every event the
charm handles, so a pod that restarted with a new IP is reachable again without operator action.
"""

from __future__ import annotations

import json
import logging
import socket

import ops

logger = logging.getLogger(__name__)


class IngressReadyEvent(ops.RelationEvent):
    """The provider published (or changed) the URL of the application."""


class IngressRevokedEvent(ops.RelationEvent):
    """The provider withdrew the URL, or the relation is gone."""


class IngressRequiresEvents(ops.ObjectEvents):
    """Events of :class:`IngressRequires`."""

    ready = ops.EventSource(IngressReadyEvent)
    revoked = ops.EventSource(IngressRevokedEvent)


class IngressRequires(ops.Object):
    """Publish where the application listens and read the URL the ingress gives it."""

    on = IngressRequiresEvents()
    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(self, charm: ops.CharmBase, relation_name: str, *, port: int):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name
        self.port = port
        # Set by the charm once it opened the port in this dispatch (Juju lists ports opened
        # during a hook only after it).
        self.port_opened = False
        self._stored.set_default(url="")
        events = charm.on[relation_name]
        self.framework.observe(events.relation_created, self._on_relation_created)
        self.framework.observe(events.relation_changed, self._on_relation_changed)
        self.framework.observe(events.relation_broken, self._on_relation_broken)

    def _on_relation_created(self, _: ops.RelationCreatedEvent) -> None:
        self.publish()

    def _on_relation_changed(self, event: ops.RelationChangedEvent) -> None:
        self.publish()
        url = self.url or ""
        if url == self._stored.url:
            return
        self._stored.url = url
        if url:
            self.on.ready.emit(event.relation, event.app, event.unit)
        else:
            self.on.revoked.emit(event.relation, event.app, event.unit)

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._stored.url = ""
        self.on.revoked.emit(event.relation, event.app, event.unit)

    @property
    def url(self) -> str | None:
        """The URL the provider published for the application, if any."""
        relation = self.model.get_relation(self.relation_name)
        if relation is None or relation.app is None:
            return None
        raw = relation.data[relation.app].get("ingress")
        if not raw:
            return None
        try:
            url = json.loads(raw).get("url")
        except (json.JSONDecodeError, AttributeError):
            logger.warning("ignoring malformed ingress data %r", raw)
            return None
        return url if isinstance(url, str) and url else None

    def publish(self) -> None:
        """Write this application's and this unit's data; idempotent."""
        relation = self.model.get_relation(self.relation_name)
        if relation is None:
            return
        if self.model.unit.is_leader():
            app_data = {
                "model": json.dumps(self.model.name),
                "name": json.dumps(self.model.app.name),
                "port": json.dumps(self.port),
                "strip-prefix": json.dumps(True),
            }
            databag = relation.data[self.model.app]
            opened = self.model.unit.opened_ports()
            if self.port_opened or ops.Port("tcp", self.port) in opened:
                app_data["is_port_open"] = json.dumps(True)
            else:
                databag.pop("is_port_open", None)
            databag.pop("scheme", None)
            databag.update(app_data)
        unit_data = {"host": json.dumps(socket.getfqdn())}
        address = unit_address(self.model, self.relation_name)
        if address:
            unit_data["ip"] = json.dumps(address)
        relation.data[self.model.unit].update(unit_data)


def unit_address(model: ops.Model, binding: str) -> str | None:
    """The unit's current address on a binding (it changes when the pod restarts)."""
    try:
        address = model.get_binding(binding).network.ingress_address
    except ops.ModelError:
        logger.warning("no network address for %s yet", binding)
        return None
    return str(address) if address is not None else None
