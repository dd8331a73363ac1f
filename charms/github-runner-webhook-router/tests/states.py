"""States the router charm tests start from, and the charm as the shared contracts see it."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from charm import GithubRunnerWebhookRouterCharm
from config_check import COMMAND as CONFIG_CHECK
from ops import testing
from router_config import RouterConfig
from testing_support import states
from testing_support.subject import CharmUnderTest

CONTAINER = "flask-app"
SERVICE = "flask"
FLAVOURS = "- small: [x64]\n- large: [x64, large]\n"
THREE_HOST_URI = (
    "mongodb://router:pass%2Fword@127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017/"
    "github-runner-webhook-router?replicaSet=mongodb&authSource=admin"
)
DB_PASSWORD = "pass/word"
WEBHOOK_SECRET = "It's a Secret to Everybody"
CONFIG = {"flavours": FLAVOURS, "webhook-secret": WEBHOOK_SECRET}


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
        "database": "github-runner-webhook-router",
        "replset": "mongodb",
        "version": "6.0.6",
    }
    return states.database_relation("mongodb", remote, secret, extra)


SECRET_KEY_FIELD = "flask_secret_key"
peer_relation = functools.partial(states.peer_relation, field=SECRET_KEY_FIELD)


def container(
    can_connect: bool = True,
    execs: frozenset[testing.Exec] | set[testing.Exec] = frozenset(),
    **kwargs: Any,
) -> testing.Container:
    """The workload container; the service's config check passes unless execs says otherwise.

    The tests' configurations are valid for the real service: ``test_config_table`` runs the
    real check on them.
    """
    checks = (
        {testing.Exec(CONFIG_CHECK)}
        if not any(e.command_prefix == CONFIG_CHECK for e in execs)
        else set()
    )
    return testing.Container(
        CONTAINER, can_connect=can_connect, execs=frozenset(execs) | checks, **kwargs
    )


def ready_state(**overrides: Any) -> testing.State:
    """A leader with config, a reachable container, MongoDB credentials and a secret key."""
    secret = mongodb_secret()
    state = states.ready_state(
        config=CONFIG,
        container=container(),
        database=mongodb_relation(secret),
        secret=secret,
        peer=peer_relation(),
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
    database_name="github-runner-webhook-router",
    peer_relation=peer_relation,
    read_config=RouterConfig.from_charm_config,
    ready_state=ready_state,
    required_config=CONFIG,
)
