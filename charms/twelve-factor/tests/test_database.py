"""Reading the database provider's answer (data-interfaces protocol v0)."""

from __future__ import annotations

import pytest
from twelve_factor.database import connection_from_databag


def test_no_credentials_means_not_created():
    assert connection_from_databag("postgresql", {"endpoints": "h:5432"}, None) is None


@pytest.mark.parametrize(
    ("kind", "databag", "uri"),
    [
        pytest.param(
            "postgresql",
            {
                "endpoints": "127.0.0.41:5432",
                "username": "u",
                "password": "p",
                "uris": "postgresql://u:p@127.0.0.41:5432/db",
                "version": "16.4",
            },
            "postgresql://u:p@127.0.0.41:5432/db",
            id="plain-credentials-with-uris",
        ),
        pytest.param(
            "postgresql",
            {"endpoints": "127.0.0.41:5432", "database": "db", "username": "u", "password": "p"},
            "postgresql://u:p@127.0.0.41:5432/db",
            id="url-is-built-for-postgresql-revisions-without-uris",
        ),
        pytest.param(
            "mongodb",
            {
                "endpoints": "127.0.0.1:27017,127.0.0.2:27017",
                "database": "db",
                "replset": "rs0",
                "username": "u",
                "password": "p",
            },
            "mongodb://u:p@127.0.0.1:27017,127.0.0.2:27017/db?replicaSet=rs0&authSource=admin",
            id="mongodb-url-without-uris-keeps-replica-set",
        ),
    ],
)
def test_plain_databag_fields_give_the_connect_string(kind, databag, uri):
    connection = connection_from_databag(kind, databag, None)

    assert connection is not None
    assert connection.uri == uri
    assert connection.environment()[f"{kind.upper()}_DB_CONNECT_STRING"] == uri
    assert connection.version == databag.get("version")


def test_secret_credentials_win_over_databag_fields():
    databag = {"endpoints": "127.0.0.41:5432", "database": "db", "secret-user": "secret:x"}

    connection = connection_from_databag(
        "postgresql", databag, {"username": "u", "password": "p@ss"}
    )

    assert connection is not None
    assert connection.uri == "postgresql://u:p%40ss@127.0.0.41:5432/db"


def test_credentials_without_endpoints_or_uris_are_not_enough():
    assert connection_from_databag("mongodb", {"username": "u", "password": "p"}, None) is None


def test_unparsable_uri_still_reaches_the_workload():
    databag = {"username": "u", "password": "p", "uris": "mongodb+weird"}

    connection = connection_from_databag("mongodb", databag, None)

    assert connection is not None
    assert connection.environment() == {"MONGODB_DB_CONNECT_STRING": "mongodb+weird"}
