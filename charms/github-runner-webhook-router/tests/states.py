"""States the router charm tests start from, and the charm as the shared contracts see it."""

from __future__ import annotations

import dataclasses
from typing import Any

from charm import GithubRunnerWebhookRouterCharm
from ops import testing
from router_config import RouterConfig
from testing_support import states
from testing_support.subject import CharmUnderTest

CONTAINER = "flask-app"
SERVICE = "flask"
FLAVOURS = "- small: [x64]\n- large: [x64, large]\n"
THREE_HOST_URI = (
    "mongodb://router:pass%2Fword@127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017/"
    "github_runner_webhook_router?replicaSet=mongodb&authSource=admin"
)
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
    remote = {
        "endpoints": "127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017",
        "database": "github_runner_webhook_router",
        "replset": "mongodb",
        "version": "6.0.6",
    }
    return states.database_relation("mongodb", remote, secret, extra)


def container(can_connect: bool = True, **kwargs: Any) -> testing.Container:
    return testing.Container(CONTAINER, can_connect=can_connect, **kwargs)


def ready_state(**overrides: Any) -> testing.State:
    """A leader with config, a reachable container, MongoDB credentials and a secret key."""
    secret = mongodb_secret()
    state = states.ready_state(
        config={"flavours": FLAVOURS},
        container=container(),
        database=mongodb_relation(secret),
        secret=secret,
        model="ci",
    )
    return dataclasses.replace(state, **overrides)


def service_environment(state: testing.State) -> dict[str, str]:
    """The environment of the gunicorn service in the container's plan."""
    return states.service_environment(state, CONTAINER, SERVICE)


ROUTER = CharmUnderTest(
    name="github-runner-webhook-router",
    charm=GithubRunnerWebhookRouterCharm,
    framework="flask",
    container=CONTAINER,
    service=SERVICE,
    database="mongodb",
    database_name="github_runner_webhook_router",
    read_config=RouterConfig.from_charm_config,
    ready_state=ready_state,
    required_config={"flavours": FLAVOURS},
)
