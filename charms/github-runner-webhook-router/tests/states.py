"""Builders of the Juju states the router charm tests start from."""

from __future__ import annotations

import dataclasses
from typing import Any

from ops import testing

CONTAINER = "flask-app"
SERVICE = "flask"
FLAVOURS = "- small: [x64]\n- large: [x64, large]\n"
THREE_HOST_URI = (
    "mongodb://router:pass%2Fword@127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017/"
    "github_runner_webhook_router?replicaSet=mongodb&authSource=admin"
)
SECRET_KEY = "a-secret-key-generated-earlier"
DB_PASSWORD = "pass/word"


def mongodb_secret(uri: str = THREE_HOST_URI, password: str = DB_PASSWORD) -> testing.Secret:
    """The credentials secret a MongoDB provider shares with the router."""
    return testing.Secret(
        tracked_content={"username": "router", "password": password, "uris": uri},
    )


def mongodb_relation(
    secret: testing.Secret | None = None, extra: dict[str, str] | None = None
) -> testing.Relation:
    """A mongodb relation; credentials through the secret when given."""
    remote: dict[str, str] = {
        "endpoints": "127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017",
        "database": "github_runner_webhook_router",
        "replset": "mongodb",
        "version": "6.0.6",
    }
    if secret is not None:
        remote["secret-user"] = secret.id
    remote.update(extra or {})
    return testing.Relation("mongodb", remote_app_name="mongodb", remote_app_data=remote)


def peer_relation(secret_key: str | None = SECRET_KEY) -> testing.PeerRelation:
    data = {"secret-key": secret_key} if secret_key else {}
    return testing.PeerRelation("secret-storage", local_app_data=data, peers_data={1: {}})


def container(can_connect: bool = True, **kwargs: Any) -> testing.Container:
    return testing.Container(CONTAINER, can_connect=can_connect, **kwargs)


def ready_state(**overrides: Any) -> testing.State:
    """A leader with config, a reachable container, MongoDB credentials and a secret key."""
    secret = mongodb_secret()
    state = testing.State(
        leader=True,
        config={"flavours": FLAVOURS},
        containers={container()},
        relations={mongodb_relation(secret), peer_relation()},
        secrets={secret},
        model=testing.Model(name="ci"),
    )
    return dataclasses.replace(state, **overrides)


def with_peer(state: testing.State, peer: testing.PeerRelation) -> testing.State:
    """The state with its secret-storage relation replaced."""
    others = {r for r in state.relations if r.endpoint != "secret-storage"}
    return dataclasses.replace(state, relations=frozenset(others | {peer}))


def with_relation(state: testing.State, relation: testing.RelationBase) -> testing.State:
    """The state with one more relation."""
    return dataclasses.replace(state, relations=state.relations | {relation})


def service_environment(state: testing.State) -> dict[str, str]:
    """The environment of the gunicorn service in the container's plan."""
    return dict(state.get_container(CONTAINER).plan.services[SERVICE].environment)
