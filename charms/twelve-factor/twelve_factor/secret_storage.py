"""The application's secret key, kept in the ``secret-storage`` peer relation.

The leader generates it once (and again only on request); every unit reads the same value, so
sessions and signed tokens stay valid whichever unit serves a request.
"""

from __future__ import annotations

import secrets

import ops

SECRET_KEY_FIELD = "secret-key"  # noqa: S105 (a databag key)


class SecretKeyStorage(ops.Object):
    """Generate, rotate and read the shared secret key."""

    def __init__(self, charm: ops.CharmBase, relation_name: str):
        super().__init__(charm, relation_name)
        self.relation_name = relation_name

    @property
    def relation(self) -> ops.Relation | None:
        """The peer relation (Juju creates it when the first unit starts)."""
        return self.model.get_relation(self.relation_name)

    def secret_key(self) -> str | None:
        """The current key, None until the leader has generated it."""
        relation = self.relation
        if relation is None:
            return None
        return relation.data[self.model.app].get(SECRET_KEY_FIELD) or None

    def ensure(self) -> None:
        """As leader, generate the key if there is none yet."""
        if self.model.unit.is_leader() and self.relation is not None and not self.secret_key():
            self.rotate()

    def rotate(self) -> None:
        """Replace the key with a new random one (leader only).

        Raises:
            RuntimeError: this unit is not the leader or the peer relation is missing.
        """
        relation = self.relation
        if relation is None or not self.model.unit.is_leader():
            raise RuntimeError("only the leader can set the secret key, once peers are related")
        relation.data[self.model.app][SECRET_KEY_FIELD] = secrets.token_urlsafe(50)
