"""Optional allow-lists: repositories or organisations, and source networks (with a proxy)."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import SECRET, AppFactory, Poster, Reader, dispatcher, job_body
from webhook_router.signature import sign
from werkzeug.datastructures import Headers

GITHUB_HOOKS = "192.30.252.0/22,185.199.108.0/22 2a0a:a440::/29"
FROM_GITHUB = "192.30.252.10"
NOT_GITHUB = "203.0.113.9"


def in_repository(full_name: str, action: str = "queued") -> bytes:
    document = json.loads(job_body(["x64"], action=action))
    document["repository"]["full_name"] = full_name
    return json.dumps(document).encode()


def rejected(app: Flask, reason: str) -> float:
    labels = {"outcome": "rejected", "flavour": "", "reason": reason}
    value = dispatcher(app).metrics.registry.get_sample_value(
        "webhook_router_webhooks_total", labels
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("allowed", "repository", "status"),
    [
        ("codertocat/hello-world", "Codertocat/Hello-World", 200),
        ("codertocat/hello-world", "Codertocat/Other", 403),
        ("Codertocat", "codertocat/any-repo", 200),
        ("codertocat", "octo-org/hello-world", 403),
        ("octo-org, codertocat/hello-world", "octo-org/x", 200),
        ("octo-org\ncodertocat/hello-world", "codertocat/hello-world.js", 403),
    ],
)
def test_only_allowed_repositories_and_organisations_are_routed(
    make_app: AppFactory,
    post: Poster,
    read_queue: Reader,
    flavour: str,
    allowed: str,
    repository: str,
    status: int,
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", FLASK_ALLOWED_REPOSITORIES=allowed)

    response = post(app.test_client(), in_repository(repository))

    assert response.status_code == status
    assert len(read_queue(app, flavour)) == (1 if status == 200 else 0)
    if status == 403:
        assert response.text == "Jobs of this repository are not routed here\n"
        assert repository not in response.text
        assert rejected(app, "repository_not_allowed") == 1


def test_other_events_of_a_repository_not_allowed_are_refused_too(
    make_app: AppFactory, post: Poster, flavour: str
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", FLASK_ALLOWED_REPOSITORIES="octo-org")

    response = post(app.test_client(), in_repository("other/repo", action="in_progress"))

    assert response.status_code == 403


def client_from(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.mark.parametrize(
    ("address", "status"),
    [
        (FROM_GITHUB, 200),
        ("185.199.111.255", 200),
        ("2a0a:a440::1", 200),
        (f"::ffff:{FROM_GITHUB}", 200),
        (NOT_GITHUB, 403),
        ("127.0.0.1", 403),
        ("2001:db8::1", 403),
    ],
)
def test_only_clients_in_the_allowed_networks_are_served(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, address: str, status: int
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", FLASK_ALLOWED_NETWORKS=GITHUB_HOOKS)

    response = post(client_from(app, address), job_body(["x64"]))

    assert response.status_code == status
    assert len(read_queue(app, flavour)) == (1 if status == 200 else 0)
    if status == 403:
        assert response.text == "Webhooks are not accepted from this address\n"
        assert rejected(app, "source_not_allowed") == 1


def test_a_forged_header_before_the_proxys_own_header_is_ignored(
    make_app: AppFactory, flavour: str
) -> None:
    """A proxy that adds its own header line (instead of appending) still has the last word."""
    app = make_app(
        FLASK_FLAVOURS=f"- {flavour}: [x64]",
        FLASK_ALLOWED_NETWORKS=GITHUB_HOOKS,
        FLASK_CLIENT_ADDRESS_HEADER="X-Forwarded-For",
    )
    client = client_from(app, "127.0.0.1")
    body = job_body(["x64"])
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "workflow_job"),
            ("X-Hub-Signature-256", sign(SECRET.encode(), body)),
            ("X-Forwarded-For", FROM_GITHUB),
            ("X-Forwarded-For", NOT_GITHUB),
        ]
    )

    response = client.post("/webhook", data=body, headers=headers)

    assert response.status_code == 403


def test_source_is_checked_before_the_signature(
    make_app: AppFactory, post: Poster, flavour: str
) -> None:
    app = make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", FLASK_ALLOWED_NETWORKS=GITHUB_HOOKS)

    response = post(client_from(app, NOT_GITHUB), job_body(["x64"]), secret=None)

    assert response.status_code == 403
    assert response.text == "Webhooks are not accepted from this address\n"


@pytest.mark.parametrize(
    ("env", "peer", "forwarded", "status"),
    [
        # Without a configured header, the header is ignored: the peer is the client.
        ({}, "127.0.0.1", FROM_GITHUB, 403),
        ({}, FROM_GITHUB, NOT_GITHUB, 200),
        # With it, the last value (added by the proxy in front of us) names the client.
        ({"FLASK_CLIENT_ADDRESS_HEADER": "X-Forwarded-For"}, "127.0.0.1", FROM_GITHUB, 200),
        (
            {"FLASK_CLIENT_ADDRESS_HEADER": "X-Forwarded-For"},
            "127.0.0.1",
            f"{NOT_GITHUB}, {FROM_GITHUB}",
            200,
        ),
        (  # a client cannot name itself GitHub by sending the header: its value comes first
            {"FLASK_CLIENT_ADDRESS_HEADER": "X-Forwarded-For"},
            "127.0.0.1",
            f"{FROM_GITHUB}, {NOT_GITHUB}",
            403,
        ),
        ({"FLASK_CLIENT_ADDRESS_HEADER": "X-Forwarded-For"}, "127.0.0.1", "not-an-ip", 403),
        (  # believed only from the trusted proxies, when those are configured
            {
                "FLASK_CLIENT_ADDRESS_HEADER": "X-Forwarded-For",
                "FLASK_TRUSTED_PROXIES": "10.0.0.0/8",
            },
            "127.0.0.1",
            FROM_GITHUB,
            403,
        ),
        (
            {
                "FLASK_CLIENT_ADDRESS_HEADER": "X-Forwarded-For",
                "FLASK_TRUSTED_PROXIES": "10.0.0.0/8",
            },
            "10.1.2.3",
            FROM_GITHUB,
            200,
        ),
        ({"FLASK_CLIENT_ADDRESS_HEADER": "X-Real-IP"}, "127.0.0.1", FROM_GITHUB, 200),
    ],
)
def test_client_address_header_names_the_client_only_when_configured(
    make_app: AppFactory,
    post: Poster,
    flavour: str,
    env: dict[str, str],
    peer: str,
    forwarded: str,
    status: int,
) -> None:
    app = make_app(
        FLASK_FLAVOURS=f"- {flavour}: [x64]", FLASK_ALLOWED_NETWORKS=GITHUB_HOOKS, **env
    )
    header = env.get("FLASK_CLIENT_ADDRESS_HEADER", "X-Forwarded-For")

    response = post(client_from(app, peer), job_body(["x64"]), headers={header: forwarded})

    assert response.status_code == status
