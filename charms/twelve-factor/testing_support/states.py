"""Builders of the Juju states that every twelve-factor charm's ``ops.testing`` tests use."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ops import testing

SECRET_KEY = "a-secret-key-generated-earlier"


def peer_relation(secret_key: str | None = SECRET_KEY, *, field: str) -> testing.PeerRelation:
    """The secret-storage peer relation, holding the app's secret key under ``field``.

    ``field`` is paas-charm's name, ``<framework>_secret_key``; no key when ``secret_key`` is
    None.
    """
    data = {field: secret_key} if secret_key else {}
    return testing.PeerRelation("secret-storage", local_app_data=data, peers_data={1: {}})


def database_relation(
    endpoint: str,
    remote: Mapping[str, str],
    secret: testing.Secret | None = None,
    extra: Mapping[str, str] | None = None,
) -> testing.Relation:
    """A database relation with the provider's answer; credentials through the secret if given.

    Args:
        endpoint: the relation endpoint, also the provider application's name.
        remote: what the provider put in its application databag, credentials aside.
        secret: the credentials secret the provider shares, named by ``secret-user``.
        extra: more (or overriding) provider databag fields.
    """
    data = dict(remote)
    if secret is not None:
        data["secret-user"] = secret.id
    data.update(extra or {})
    return testing.Relation(endpoint, remote_app_name=endpoint, remote_app_data=data)


def ingress_relation(url: str) -> testing.Relation:
    """An ingress relation whose provider has published the application's URL."""
    return testing.Relation("ingress", remote_app_data={"ingress": json.dumps({"url": url})})


def ready_state(
    *,
    config: Mapping[str, Any],
    container: testing.Container,
    database: testing.Relation,
    secret: testing.Secret,
    peer: testing.PeerRelation,
    model: str,
) -> testing.State:
    """A leader with config, a reachable container, database credentials and a secret key.

    A charm's tests replace fields of it (``dataclasses.replace``) to depart from ready.
    """
    return testing.State(
        leader=True,
        config=dict(config),
        containers={container},
        relations={database, peer},
        secrets={secret},
        model=testing.Model(name=model),
    )


def with_peer(state: testing.State, peer: testing.PeerRelation) -> testing.State:
    """The state with its secret-storage relation replaced."""
    others = {r for r in state.relations if r.endpoint != "secret-storage"}
    return dataclasses.replace(state, relations=frozenset(others | {peer}))


def with_relation(state: testing.State, relation: testing.RelationBase) -> testing.State:
    """The state with one more relation."""
    return dataclasses.replace(state, relations=state.relations | {relation})


def service_environment(state: testing.State, container: str, service: str) -> dict[str, str]:
    """The environment of the gunicorn service in the container's plan."""
    return dict(state.get_container(container).plan.services[service].environment)
