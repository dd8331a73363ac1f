"""The provider's actions: user and permission management, and the secret key."""

from __future__ import annotations

import pytest
from charm import HttprequestLegoProviderCharm
from ops import testing
from testing_support.states import SECRET_KEY

from tests.states import CONTAINER, MIGRATE, container, ready_state

MANAGE = ("/bin/python3", "manage.py")


def started(
    ctx: testing.Context[HttprequestLegoProviderCharm], *execs: testing.Exec
) -> testing.State:
    """A running unit whose container also fakes the given management commands."""
    workload = container(execs=frozenset({testing.Exec(MIGRATE), *execs}))
    state = ready_state(containers={workload})
    out = ctx.run(ctx.on.pebble_ready(workload), state)
    ctx.exec_history.clear()
    return out


@pytest.mark.parametrize(
    ("action", "params", "arguments"),
    [
        ("create-user", {"username": "alice"}, ["create_user", "alice"]),
        ("create-user", {"username": "bob", "password": "pw"}, ["create_user", "bob", "pw"]),
        (
            "create-user",
            {"username": "bob", "password": "-pw"},
            ["create_user", "bob", "--", "-pw"],
        ),
        (
            "allow-domains",
            {"username": "alice", "domains": "example.com, a.org", "subdomains": "b.net"},
            ["allow_domains", "alice", "--domains", "example.com,a.org", "--subdomains", "b.net"],
        ),
        (
            "revoke-domains",
            {"username": "alice", "subdomains": "b.net"},
            ["revoke_domains", "alice", "--subdomains", "b.net"],
        ),
        ("list-domains", {"username": "*"}, ["list_domains", "*"]),
        ("list-domains", {"username": "alice"}, ["list_domains", "alice"]),
        ("create-superuser", {"username": "root"}, ["create_superuser", "root"]),
        (
            "create-superuser",
            {"username": "root", "email": "root@example.com"},
            ["create_superuser", "root", "--email", "root@example.com"],
        ),
    ],
)
def test_actions_run_the_management_command_and_return_its_output(ctx, action, params, arguments):
    state = started(ctx, testing.Exec(MANAGE, stdout="output of the command\n"))

    ctx.run(ctx.on.action(action, params=params), state)

    assert ctx.action_results == {"result": "output of the command"}
    [call] = ctx.exec_history[CONTAINER]
    assert call.command == [*MANAGE, *arguments]
    assert call.working_dir == "/django/app"
    assert call.user == "_daemon_"
    assert call.environment["DJANGO_SECRET_KEY"] == SECRET_KEY
    assert "POSTGRESQL_DB_CONNECT_STRING" in call.environment


def test_create_user_returns_the_generated_password(ctx):
    state = started(ctx, testing.Exec((*MANAGE, "create_user"), stdout="password: s3cret\n"))

    ctx.run(ctx.on.action("create-user", params={"username": "alice"}), state)

    # "password", as the upstream charm answers; the whole output as "result".
    assert ctx.action_results == {"result": "password: s3cret", "password": "s3cret"}


def test_create_superuser_answers_the_password_as_the_upstream_action_does(ctx):
    output = "Created superuser root\npassword: gener4ted\n"
    state = started(ctx, testing.Exec((*MANAGE, "create_superuser"), stdout=output))

    ctx.run(ctx.on.action("create-superuser", params={"username": "root"}), state)

    assert ctx.action_results["password"] == "gener4ted"


def test_command_failure_is_reported_with_its_stderr(ctx):
    failing = testing.Exec(
        (*MANAGE, "allow_domains"), return_code=1, stderr="CommandError: no user bob\n"
    )
    state = started(ctx, failing)

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(
            ctx.on.action("allow-domains", params={"username": "bob", "domains": "x.org"}),
            state,
        )

    assert failure.value.message == "allow_domains failed (exit 1): CommandError: no user bob"


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("allow-domains", {"username": "alice"}, "give domains, subdomains or both"),
        ("revoke-domains", {"username": "alice", "domains": " , "}, "give domains"),
        ("create-user", {"username": "--help"}, "invalid username"),
        ("create-user", {"username": "*"}, "invalid username"),
        ("allow-domains", {"username": "a", "domains": "-x"}, "invalid entry in domains"),
        ("list-domains", {"username": " "}, "missing parameter username"),
    ],
)
def test_invalid_parameters_fail_without_running_anything(ctx, action, params, message):
    state = started(ctx, testing.Exec(MANAGE))

    with pytest.raises(testing.ActionFailed, match=message):
        ctx.run(ctx.on.action(action, params=params), state)

    assert ctx.exec_history.get(CONTAINER, []) == []


def test_actions_fail_before_the_service_is_configured(ctx):
    state = ready_state(config={})

    with pytest.raises(testing.ActionFailed, match="not configured yet"):
        ctx.run(ctx.on.action("list-domains", params={"username": "*"}), state)


def test_actions_fail_while_the_container_is_unreachable(ctx):
    state = ready_state(containers={container(can_connect=False)})

    with pytest.raises(testing.ActionFailed, match="not configured yet"):
        ctx.run(ctx.on.action("list-domains", params={"username": "*"}), state)


def test_rotate_secret_key_restarts_with_a_new_key(ctx):
    state = started(ctx)

    out = ctx.run(ctx.on.action("rotate-secret-key"), state)

    env = out.get_container(CONTAINER).plan.services["django"].environment
    assert env["DJANGO_SECRET_KEY"] not in (SECRET_KEY, "")
    assert ctx.action_results == {"status": "success"}  # what paas-charm's action answers


def test_rotate_secret_key_fails_on_a_follower(ctx):
    with pytest.raises(testing.ActionFailed, match="only the leader"):
        ctx.run(ctx.on.action("rotate-secret-key"), ready_state(leader=False))
