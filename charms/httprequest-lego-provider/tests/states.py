"""Builders of the Juju states the provider charm tests start from."""

from __future__ import annotations

import dataclasses
from typing import Any

from ops import testing

CONTAINER = "django-app"
SERVICE = "django"
SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----"
)
KNOWN_HOSTS = "git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
GIT_REPO = "git+ssh://lego@git.example/dns/zones.git@main"
SECRET_KEY = "a-django-secret-key"
DB_PASSWORD = "p@ss/word"
DB_URI = "postgresql://lego:p%40ss%2Fword@10.1.0.5:5432/httprequest_lego_provider"
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
        "endpoints": "10.1.0.5:5432",
        "database": "httprequest_lego_provider",
        "version": "16.6",
    }
    if secret is not None:
        remote["secret-user"] = secret.id
    remote.update(extra or {})
    return testing.Relation("postgresql", remote_app_name="postgresql", remote_app_data=remote)


def peer_relation(secret_key: str | None = SECRET_KEY) -> testing.PeerRelation:
    data = {"secret-key": secret_key} if secret_key else {}
    return testing.PeerRelation("secret-storage", local_app_data=data, peers_data={1: {}})


def container(
    can_connect: bool = True, execs: frozenset[testing.Exec] | None = None, **kwargs: Any
) -> testing.Container:
    """The workload container; migrations succeed unless execs says otherwise."""
    if execs is None:
        execs = frozenset({testing.Exec(MIGRATE)})
    return testing.Container(CONTAINER, can_connect=can_connect, execs=execs, **kwargs)


def ready_state(**overrides: Any) -> testing.State:
    """A leader with config, a reachable container, PostgreSQL credentials and a secret key."""
    secret = postgresql_secret()
    state = testing.State(
        leader=True,
        config=CONFIG,
        containers={container()},
        relations={postgresql_relation(secret), peer_relation()},
        secrets={secret},
        model=testing.Model(name="lego"),
    )
    return dataclasses.replace(state, **overrides)


def with_relation(state: testing.State, relation: testing.RelationBase) -> testing.State:
    """The state with one more relation."""
    return dataclasses.replace(state, relations=state.relations | {relation})


def service_environment(state: testing.State) -> dict[str, str]:
    """The environment of the gunicorn service in the container's plan."""
    return dict(state.get_container(CONTAINER).plan.services[SERVICE].environment)
