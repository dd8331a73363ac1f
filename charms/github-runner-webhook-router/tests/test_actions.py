"""The router's actions: rotate-secret-key and redeliver-failed-webhooks (seed 003, 13-14)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from ops import testing
from testing_support.states import SECRET_KEY

from tests.states import CONTAINER, container, ready_state, service_environment

REDELIVER = ("/bin/python3", "-m", "webhook_router.redeliver")
TOKEN = testing.Secret(tracked_content={"token": "ghp_token"})
PRIVATE_KEY = testing.Secret(tracked_content={"private-key": "-----BEGIN RSA PRIVATE KEY-----"})
BASE_PARAMS: dict[str, Any] = {"since": 3600, "github-path": "canonical/runners", "webhook-id": 42}


def redelivery_state(*execs: testing.Exec, **overrides: Any) -> testing.State:
    state = ready_state(containers={container(execs=set(execs))})
    state = dataclasses.replace(state, secrets=state.secrets | {TOKEN, PRIVATE_KEY})
    return dataclasses.replace(state, **overrides)


def test_rotate_secret_key_replaces_the_key_and_restarts_with_it(ctx):
    state = ready_state()

    out = ctx.run(ctx.on.action("rotate-secret-key"), state)

    peer = next(r for r in out.relations if r.endpoint == "secret-storage")
    new_key = peer.local_app_data["flask_secret_key"]
    assert new_key != SECRET_KEY
    assert service_environment(out)["FLASK_SECRET_KEY"] == new_key
    assert ctx.action_results == {"status": "success"}  # what paas-charm's action answers


def test_rotate_secret_key_fails_on_a_follower(ctx):
    with pytest.raises(testing.ActionFailed, match="only the leader"):
        ctx.run(ctx.on.action("rotate-secret-key"), ready_state(leader=False))


def test_rotate_secret_key_fails_without_the_peer_relation(ctx):
    state = ready_state()
    state = dataclasses.replace(
        state, relations=frozenset(r for r in state.relations if r.endpoint != "secret-storage")
    )

    with pytest.raises(testing.ActionFailed, match="peer relation is not set up"):
        ctx.run(ctx.on.action("rotate-secret-key"), state)


def test_redeliver_with_a_token_runs_the_tool_and_returns_the_count(ctx):
    state = redelivery_state(testing.Exec(REDELIVER, stdout='{"redelivered": 3}\n'))
    params = {**BASE_PARAMS, "github-token-secret-id": TOKEN.id}

    ctx.run(ctx.on.action("redeliver-failed-webhooks", params=params), state)

    assert ctx.action_results == {"redelivered": 3}
    [call] = ctx.exec_history[CONTAINER]
    assert call.command == [
        *REDELIVER,
        "--since",
        "3600",
        "--github-path",
        "canonical/runners",
        "--webhook-id",
        "42",
    ]
    assert call.environment == {"GITHUB_TOKEN": "ghp_token"}
    assert call.working_dir == "/flask/app"
    assert call.user == "_daemon_"


def test_redeliver_as_a_github_app(ctx):
    state = redelivery_state(testing.Exec(REDELIVER, stdout='{"redelivered": 0}'))
    params = {
        **BASE_PARAMS,
        "github-app-client-id": "Iv1.abc",
        "github-app-installation-id": 77,
        "github-app-private-key-secret-id": PRIVATE_KEY.id,
    }

    ctx.run(ctx.on.action("redeliver-failed-webhooks", params=params), state)

    assert ctx.action_results == {"redelivered": 0}
    assert ctx.exec_history[CONTAINER][0].environment == {
        "GITHUB_APP_CLIENT_ID": "Iv1.abc",
        "GITHUB_APP_INSTALLATION_ID": "77",
        "GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----",
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"github-token-secret-id": "TOKEN", "github-app-client-id": "Iv1.abc"},
            "give either github-token-secret-id or the github-app-\\* parameters, not both",
        ),
        ({}, "give github-token-secret-id, or github-app-client-id"),
        (
            {"github-app-client-id": "Iv1.abc", "github-app-installation-id": 7},
            "missing GitHub app parameters: github-app-private-key-secret-id",
        ),
        ({"github-token-secret-id": "secret:nope"}, "secret secret:nope not found; grant it"),
        ({"github-token-secret-id": "PRIVATE_KEY"}, "has no 'token' key"),
        ({"github-token-secret-id": "TOKEN", "github-path": "a/b/c"}, "github-path must be"),
        ({"github-token-secret-id": "TOKEN", "since": -1}, "since must be an integer"),
    ],
)
def test_redeliver_argument_errors_fail_before_running_anything(ctx, extra, message):
    ids = {"TOKEN": TOKEN.id, "PRIVATE_KEY": PRIVATE_KEY.id}
    params = {**BASE_PARAMS, **{k: ids.get(v, v) for k, v in extra.items()}}
    state = redelivery_state(testing.Exec(REDELIVER, stdout='{"redelivered": 1}'))

    with pytest.raises(testing.ActionFailed, match=message):
        ctx.run(ctx.on.action("redeliver-failed-webhooks", params=params), state)

    assert CONTAINER not in ctx.exec_history


@pytest.mark.parametrize(
    ("return_code", "stdout", "message"),
    [
        (1, "", "the redelivery tool refused the arguments: webhook 42 not found"),
        (2, "", "GitHub API request failed: webhook 42 not found"),
        (3, "", "redelivery failed \\(exit 3\\): webhook 42 not found"),
        (0, "all good", "unexpected output from the redelivery tool"),
        (0, '{"redelivered": "3"}', "unexpected output from the redelivery tool"),
    ],
)
def test_redeliver_tool_failures_are_reported_distinctly(ctx, return_code, stdout, message):
    tool = testing.Exec(
        REDELIVER, return_code=return_code, stdout=stdout, stderr="Traceback\nwebhook 42 not found"
    )
    params = {**BASE_PARAMS, "github-token-secret-id": TOKEN.id}

    with pytest.raises(testing.ActionFailed, match=message):
        ctx.run(ctx.on.action("redeliver-failed-webhooks", params=params), redelivery_state(tool))


def test_redeliver_fails_while_the_container_is_unreachable(ctx):
    state = redelivery_state(containers={container(can_connect=False)})
    params = {**BASE_PARAMS, "github-token-secret-id": TOKEN.id}

    with pytest.raises(testing.ActionFailed, match="container is not reachable"):
        ctx.run(ctx.on.action("redeliver-failed-webhooks", params=params), state)
