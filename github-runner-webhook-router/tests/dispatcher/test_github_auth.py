"""GitHub auth and GHES for the dispatcher: App installation tokens, renewal, base paths.

Against the local fake of GitHub's REST API (dispatcher/fake_github.py), which follows the
documented contract of the installation-token, jobs and generate-jitconfig endpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dispatcher.conftest import DispatcherFactory
from dispatcher.fake_github import FakeGitHub, running
from dispatcher.support import BROKERS, RecordingSpawner, job_text, publish, wait_until
from webhook_router.github_api import ApiError, AppCredentials, GitHubClient, TokenSource

CLIENT_ID = "Iv1.dispatcher"


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def app_github(app_key: rsa.RSAPrivateKey) -> Iterator[FakeGitHub]:
    """A GHES-like fake (API under /api/v3) that only takes App installation tokens."""
    fake = FakeGitHub(
        app_public_key=app_key.public_key(),
        app_client_id=CLIENT_ID,
        prefix="/api/v3",
        token_lifetime=timedelta(minutes=4),  # under the renewal margin: renewed every call
    )
    with running(fake) as server:
        yield server


def test_dispatcher_authenticates_as_a_github_app_on_ghes_and_gets_a_jit_config(
    make_dispatcher: DispatcherFactory,
    app_github: FakeGitHub,
    app_key: rsa.RSAPrivateKey,
    queue_name: str,
    tmp_path: Path,
) -> None:
    spawner = RecordingSpawner(app_github)
    broker = BROKERS["amqp"]
    make_dispatcher(
        broker,
        spawner,
        GITHUB_TOKEN="",
        GITHUB_APP_CLIENT_ID=CLIENT_ID,
        GITHUB_APP_INSTALLATION_ID="99",
        GITHUB_APP_PRIVATE_KEY=pem(app_key),
        DISPATCHER_GITHUB_API_URL=app_github.url,
        DISPATCHER_JIT_CONFIG="true",
        DISPATCHER_JIT_SCOPE="organisation",
    )

    publish(broker, tmp_path, queue_name, job_text(app_github.job_url(61), ["x64"]))
    wait_until(lambda: app_github.gets(61) >= 2, "the pickup poll")

    [request] = spawner.requests
    assert request.encoded_jit_config
    assert (
        app_github.jit_requests[0]["path"] == "/orgs/octo-org/actions/runners/generate-jitconfig"
    )
    assert "POST /api/v3/app/installations/99/access_tokens" in app_github.requests


def test_installation_token_is_renewed_before_it_expires(
    app_github: FakeGitHub, app_key: rsa.RSAPrivateKey
) -> None:
    tokens = TokenSource(app_github.url, AppCredentials(CLIENT_ID, "99", pem(app_key)))
    with requests.Session() as session:
        client = GitHubClient(app_github.url, tokens, session)
        app_github.script(5, "queued", "queued")

        client.call("GET", app_github.job_url(5))
        client.call("GET", app_github.job_url(5))

    # Each token expires within the renewal margin, so each call renewed it.
    assert app_github.tokens_issued == 2


def test_token_lasting_an_hour_is_fetched_once(app_key: rsa.RSAPrivateKey) -> None:
    fake = FakeGitHub(app_public_key=app_key.public_key(), app_client_id=CLIENT_ID)
    with running(fake) as server, requests.Session() as session:
        tokens = TokenSource(server.url, AppCredentials(CLIENT_ID, "99", pem(app_key)))
        client = GitHubClient(server.url, tokens, session)
        for _ in range(3):
            client.call("GET", server.job_url(6))

    assert fake.tokens_issued == 1


def test_credentials_are_never_sent_to_another_host(app_github: FakeGitHub) -> None:
    with requests.Session() as session:
        client = GitHubClient(app_github.url, TokenSource(app_github.url, "ghp_x"), session)
        with pytest.raises(ApiError, match="another host"):
            client.call("GET", "http://127.0.0.2:1/repos/o/r/actions/jobs/1")


def test_a_token_renewal_holds_up_no_other_thread_while_the_old_token_is_still_valid(
    app_key: rsa.RSAPrivateKey,
) -> None:
    """One thread renews (GitHub slow to answer); another meanwhile uses the valid token.

    The fake holds the second token exchange until released; a thread that waited for the
    renewal would not return before that.
    """
    # Five minutes: renewal due at once (the margin), the token valid for five more minutes.
    fake = FakeGitHub(
        app_public_key=app_key.public_key(),
        app_client_id=CLIENT_ID,
        token_lifetime=timedelta(seconds=300),
    )
    with running(fake) as server:
        tokens = TokenSource(server.url, AppCredentials(CLIENT_ID, "99", pem(app_key)))
        with requests.Session() as session:
            first = tokens.token(session)
        server.token_gate.clear()
        results: dict[str, str] = {}

        def take(name: str) -> None:
            with requests.Session() as own:
                results[name] = tokens.token(own)

        renewer = threading.Thread(target=take, args=("renewer",))
        renewer.start()
        try:
            wait_until(lambda: server.token_requests == 2, "the slow renewal to start")
            other = threading.Thread(target=take, args=("other",))
            other.start()
            other.join(timeout=30)
            assert results.get("other") == first  # returned while the renewal still waits
        finally:
            server.token_gate.set()
            renewer.join(timeout=30)
        assert results["renewer"] == server.installation_token
        assert server.tokens_issued == 2
