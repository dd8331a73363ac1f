"""Config options and database URIs as workload environment."""

from __future__ import annotations

import json

import pytest
from twelve_factor.environment import (
    ConnectionUri,
    allowed_hosts,
    base_url,
    build_uri,
    config_environment,
    option_variable,
)

REPLICA_SET_URI = (
    "mongodb://router:s3cr%40t@127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017/"
    "router?replicaSet=mongodb&authSource=admin"
)


@pytest.mark.parametrize(
    ("prefix", "option", "variable"),
    [
        ("FLASK_", "webhook-secret", "FLASK_WEBHOOK_SECRET"),
        ("DJANGO_", "git-ssh-key", "DJANGO_GIT_SSH_KEY"),
        ("FLASK_", "default-self-hosted-labels", "FLASK_DEFAULT_SELF_HOSTED_LABELS"),
        ("DJANGO_", "debug", "DJANGO_DEBUG"),
    ],
)
def test_option_variable_is_prefixed_upper_case_with_underscores(prefix, option, variable):
    assert option_variable(prefix, option) == variable


def test_config_environment_leaves_out_unset_options_and_spells_booleans():
    environment = config_environment(
        "FLASK_", {"log-level": "INFO", "webhook-secret": None, "debug": True, "workers": 3}
    )

    assert environment == {"FLASK_LOG_LEVEL": "INFO", "FLASK_DEBUG": "true", "FLASK_WORKERS": "3"}


def test_multi_host_mongodb_uri_is_parsed_without_losing_hosts():
    """The reference charm failed on this URI (urllib cannot read a port of h1:p,h2:p)."""
    environment = ConnectionUri.parse(REPLICA_SET_URI).environment("MONGODB")

    assert environment == {
        "MONGODB_DB_CONNECT_STRING": REPLICA_SET_URI,
        "MONGODB_DB_SCHEME": "mongodb",
        "MONGODB_DB_USERNAME": "router",
        "MONGODB_DB_PASSWORD": "s3cr@t",
        "MONGODB_DB_HOSTNAME": "127.0.0.1",
        "MONGODB_DB_PORT": "27017",
        "MONGODB_DB_HOSTS": "127.0.0.1:27017,127.0.0.2:27017,127.0.0.3:27017",
        "MONGODB_DB_NAME": "router",
        "MONGODB_DB_QUERY": "replicaSet=mongodb&authSource=admin",
    }


def test_single_host_postgresql_uri_parts():
    uri = "postgresql://lego:pw@127.0.0.13:5432/lego_db"

    environment = ConnectionUri.parse(uri).environment("POSTGRESQL")

    assert environment["POSTGRESQL_DB_HOSTNAME"] == "127.0.0.13"
    assert environment["POSTGRESQL_DB_PORT"] == "5432"
    assert environment["POSTGRESQL_DB_NAME"] == "lego_db"
    assert "POSTGRESQL_DB_QUERY" not in environment


def test_ipv6_host_and_missing_port_and_userinfo():
    parsed = ConnectionUri.parse("mongodb://[::1]:27017,db.example/")

    assert parsed.hosts == (("::1", 27017), ("db.example", None))
    assert parsed.username is None
    assert parsed.environment("MONGODB")["MONGODB_DB_HOSTS"] == "[::1]:27017,db.example"


def test_username_without_password():
    parsed = ConnectionUri.parse("postgresql://lego@db:5432/x")

    assert (parsed.username, parsed.password) == ("lego", None)


@pytest.mark.parametrize(
    "uri", ["not a uri", "mongodb://", "mongodb://u:p@/db", "mongodb://h:port/db"]
)
def test_unparsable_uris_raise_value_error(uri):
    with pytest.raises(ValueError, match=r"scheme|host|port"):
        ConnectionUri.parse(uri)


def test_build_uri_quotes_credentials_and_round_trips():
    uri = build_uri(
        "postgresql",
        username="lego",
        password="p@ss:w/rd?",
        endpoints="127.0.0.45:5432",
        database="lego_db",
    )

    assert uri == "postgresql://lego:p%40ss%3Aw%2Frd%3F@127.0.0.45:5432/lego_db"
    assert ConnectionUri.parse(uri).password == "p@ss:w/rd?"


def test_build_uri_with_query():
    uri = build_uri(
        "mongodb",
        username="u",
        password="p",
        endpoints="h1:1,h2:2",
        database="db",
        query={"replicaSet": "rs"},
    )

    assert uri == "mongodb://u:p@h1:1,h2:2/db?replicaSet=rs"


def test_base_url_prefers_ingress():
    assert base_url("https://x.example/m-a", app="a", model="m", port=8000) == (
        "https://x.example/m-a"
    )
    assert base_url(None, app="a", model="m", port=8000) == "http://a.m:8000"


def test_allowed_hosts_always_include_base_url_host_once():
    hosts = allowed_hosts("https://lego.example/path", ["lego.example", " other.example ", ""])

    assert json.loads(hosts) == ["lego.example", "other.example"]
