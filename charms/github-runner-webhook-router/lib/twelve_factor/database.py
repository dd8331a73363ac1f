"""Requirer side of the ``postgresql_client`` / ``mongodb_client`` integrations.

This speaks version 0 of the data-interfaces protocol directly (the charm library that usually
does it is only distributed through Charmhub). The leader asks for a database by writing
``database`` and ``requested-secrets`` to its application databag; the provider answers in its
own with ``endpoints``, ``database``, ``version`` (and ``replset`` for MongoDB) and credentials,
either in the Juju secret named by ``secret-user`` or, from older providers, as plain fields.
Credentials appearing means the database was created.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import ops

from twelve_factor.environment import ConnectionUri, build_uri

logger = logging.getLogger(__name__)

DatabaseKind = Literal["postgresql", "mongodb"]
REQUESTED_SECRETS = ["username", "password", "tls", "tls-ca", "uris"]


@dataclass(frozen=True)
class DatabaseConnection:
    """What the workload needs to connect: the URI and, for convenience, its parsed parts."""

    kind: DatabaseKind
    uri: str
    endpoints: str
    version: str | None

    def environment(self) -> dict[str, str]:
        """``<KIND>_DB_CONNECT_STRING`` and the parsed ``<KIND>_DB_*`` parts.

        Returns:
            The environment variables; only the connect string when the URI does not parse.
        """
        prefix = self.kind.upper()
        try:
            return ConnectionUri.parse(self.uri).environment(prefix)
        except ValueError:
            logger.warning("the %s URI does not parse; passing it on unparsed", self.kind)
            return {f"{prefix}_DB_CONNECT_STRING": self.uri}


def connection_from_databag(
    kind: DatabaseKind,
    databag: Mapping[str, str],
    credentials: Mapping[str, str] | None,
) -> DatabaseConnection | None:
    """Read the provider's answer; None while the database is not created yet.

    Args:
        kind: which database the relation is for.
        databag: the provider application's databag.
        credentials: the content of the ``secret-user`` secret, when the provider sent one.

    Returns:
        The connection, or None when no credentials or endpoints were sent yet.
    """
    source = credentials if credentials is not None else databag
    username = source.get("username")
    password = source.get("password")
    uris = source.get("uris") or databag.get("uris")
    endpoints = databag.get("endpoints", "")
    if not username or not password:
        return None
    if not uris:
        if not endpoints:
            return None
        query: dict[str, str] = {}
        if kind == "mongodb":
            if databag.get("replset"):
                query["replicaSet"] = databag["replset"]
            query["authSource"] = "admin"
        uris = build_uri(
            kind,
            username=username,
            password=password,
            endpoints=endpoints,
            database=databag.get("database", ""),
            query=query,
        )
    return DatabaseConnection(
        kind=kind, uri=uris, endpoints=endpoints, version=databag.get("version")
    )


class DatabaseCreatedEvent(ops.RelationEvent):
    """The provider sent credentials for the first time on this relation."""


class DatabaseEndpointsChangedEvent(ops.RelationEvent):
    """The provider changed the database endpoints (a unit was added, removed or moved)."""


class DatabaseRequiresEvents(ops.ObjectEvents):
    """Events of :class:`DatabaseRequires`."""

    database_created = ops.EventSource(DatabaseCreatedEvent)
    endpoints_changed = ops.EventSource(DatabaseEndpointsChangedEvent)


class DatabaseRequires(ops.Object):
    """Ask for a database over one relation endpoint and read the connection back."""

    on = DatabaseRequiresEvents()
    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(
        self, charm: ops.CharmBase, relation_name: str, *, kind: DatabaseKind, database: str
    ):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name
        self.kind: DatabaseKind = kind
        self.database = database
        self._stored.set_default(seen={})
        events = charm.on[relation_name]
        self.framework.observe(events.relation_created, self._on_relation_created)
        self.framework.observe(events.relation_changed, self._on_relation_changed)
        self.framework.observe(events.relation_broken, self._on_relation_broken)

    def _on_relation_created(self, _: ops.RelationCreatedEvent) -> None:
        self.request()

    def _on_relation_changed(self, event: ops.RelationChangedEvent) -> None:
        self.request()
        connection = self.connection()
        seen = self._stored.seen
        key = str(event.relation.id)
        before = seen.get(key)
        if connection is None:
            return
        seen[key] = connection.endpoints
        if before is None:
            self.on.database_created.emit(event.relation, event.app, event.unit)
        elif before != connection.endpoints:
            self.on.endpoints_changed.emit(event.relation, event.app, event.unit)

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._stored.seen.pop(str(event.relation.id), None)

    @property
    def relation(self) -> ops.Relation | None:
        """The relation, if the application is integrated."""
        return self.model.get_relation(self.relation_name)

    def request(self) -> None:
        """As leader, (re)write the request; harmless when it is unchanged."""
        relation = self.relation
        if relation is None or not self.model.unit.is_leader():
            return
        databag = relation.data[self.model.app]
        databag["database"] = self.database
        databag["requested-secrets"] = json.dumps(REQUESTED_SECRETS)

    def connection(self) -> DatabaseConnection | None:
        """The connection the provider sent; None before the database is created."""
        relation = self.relation
        if relation is None or relation.app is None:
            return None
        databag = relation.data[relation.app]
        credentials: dict[str, str] | None = None
        secret_id = databag.get("secret-user")
        if secret_id:
            try:
                credentials = self.model.get_secret(id=secret_id).get_content(refresh=True)
            except (ops.SecretNotFoundError, ops.ModelError):
                logger.warning("cannot read the %s credentials secret yet", self.kind)
                return None
        return connection_from_databag(self.kind, databag, credentials)
