"""The application's secret key, kept in the ``secret-storage`` peer relation.

The leader generates it once (and again only on request); every unit reads the same value, so
sessions and signed tokens stay valid whichever unit serves a request. The key sits under
paas-charm's field name, ``<framework>_secret_key`` (``django_secret_key``, ``flask_secret_key``),
so refreshing from the upstream charm keeps the key it generated; a key this charm stored under
its former name, ``secret-key``, is moved there by the leader.
"""

from __future__ import annotations

import secrets

import ops

LEGACY_FIELD = "secret-key"


class SecretKeyStorage(ops.Object):
    """Generate, rotate and read the shared secret key."""

    def __init__(self, charm: ops.CharmBase, relation_name: str, *, field: str):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name
        self.field = field

    @property
    def relation(self) -> ops.Relation | None:
        """The peer relation (Juju creates it when the first unit starts)."""
        return self.model.get_relation(self.relation_name)

    def secret_key(self) -> str | None:
        """The current key, None until the leader has generated it."""
        relation = self.relation
        if relation is None:
            return None
        databag = relation.data[self.model.app]
        return databag.get(self.field) or databag.get(LEGACY_FIELD) or None

    def ensure(self) -> None:
        """As leader, keep the key under paas-charm's field, generating it if there is none."""
        relation = self.relation
        if not self.model.unit.is_leader() or relation is None:
            return
        databag = relation.data[self.model.app]
        if databag.get(self.field):
            return
        legacy = databag.get(LEGACY_FIELD)
        if legacy:
            databag[self.field] = legacy
            del databag[LEGACY_FIELD]
            return
        self.rotate()

    def rotate(self) -> None:
        """Replace the key with a new random one (leader only).

        Raises:
            RuntimeError: this unit is not the leader or the peer relation is missing.
        """
        relation = self.relation
        if relation is None or not self.model.unit.is_leader():
            raise RuntimeError("only the leader can set the secret key, once peers are related")
        databag = relation.data[self.model.app]
        databag[self.field] = secrets.token_urlsafe(64)
        databag.pop(LEGACY_FIELD, None)
