"""States the provider charm tests start from, and the charm as the shared contracts see it."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from charm import HttprequestLegoProviderCharm
from config_check import COMMAND as CONFIG_CHECK
from ops import testing
from provider_config import ProviderConfig
from testing_support import states
from testing_support.subject import CharmUnderTest

CONTAINER = "django-app"
SERVICE = "django"
SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----"
)
KNOWN_HOSTS = "git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
GIT_REPO = "git+ssh://lego@git.example/dns/zones.git@main"
DB_PASSWORD = "p@ss/word"
DB_URI = "postgresql://lego:p%40ss%2Fword@127.0.0.11:5432/httprequest-lego-provider"
MIGRATE = ("/bin/python3", "manage.py", "migrate", "--noinput")
KEYSCAN = ("ssh-keyscan",)
CONFIG = {"git-repo": GIT_REPO, "git-ssh-key": SSH_KEY, "git-known-hosts": KNOWN_HOSTS}


def postgresql_secret() -> testing.Secret:
    """The credentials secret a PostgreSQL provider shares (this revision sends no uris)."""
    return testing.Secret(tracked_content={"username": "lego", "password": DB_PASSWORD})


def postgresql_relation(
    secret: testing.Secret | None = None, extra: dict[str, str] | None = None
) -> testing.Relation:
    """A postgresql relation; credentials through the secret when given."""
    remote = {
        "endpoints": "127.0.0.11:5432",
        "database": "httprequest-lego-provider",
        "version": "16.6",
    }
    return states.database_relation("postgresql", remote, secret, extra)


SECRET_KEY_FIELD = "django_secret_key"
peer_relation = functools.partial(states.peer_relation, field=SECRET_KEY_FIELD)


def container(
    can_connect: bool = True, execs: frozenset[testing.Exec] | None = None, **kwargs: Any
) -> testing.Container:
    """The workload container; migrations succeed unless execs says otherwise.

    The service's config check passes unless execs says otherwise: the tests' configurations
    are valid for the real service (``test_config_table`` runs the real check on them).
    """
    if execs is None:
        execs = frozenset({testing.Exec(MIGRATE)})
    if not any(e.command_prefix == CONFIG_CHECK for e in execs):
        execs = frozenset(execs) | {testing.Exec(CONFIG_CHECK)}
    return testing.Container(CONTAINER, can_connect=can_connect, execs=execs, **kwargs)


def ready_state(**overrides: Any) -> testing.State:
    """A leader with config, a reachable container, PostgreSQL credentials and a secret key."""
    secret = postgresql_secret()
    state = states.ready_state(
        config=CONFIG,
        container=container(),
        database=postgresql_relation(secret),
        secret=secret,
        peer=peer_relation(),
        model="lego",
    )
    return dataclasses.replace(state, **overrides)


def service_environment(state: testing.State) -> dict[str, str]:
    """The environment of the gunicorn service in the container's plan."""
    return states.service_environment(state, CONTAINER, SERVICE)


PROVIDER = CharmUnderTest(
    name="httprequest-lego-provider",
    charm=HttprequestLegoProviderCharm,
    framework="django",
    container=CONTAINER,
    service=SERVICE,
    database="postgresql",
    database_name="httprequest-lego-provider",
    peer_relation=peer_relation,
    read_config=ProviderConfig.from_charm_config,
    ready_state=ready_state,
    required_config=CONFIG,
    workload_dir="httprequest_lego_provider",
)
