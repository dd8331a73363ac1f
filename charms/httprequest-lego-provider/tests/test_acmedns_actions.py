"""The acme-dns account and password rotation actions, answered by the real commands.

Each command's output (or refusal) comes from running the service's own management command
from its source, with the environment the charm gave the service, against a database of the
test's own on the local PostgreSQL (see ``tests.real_service``); the charm must pass it on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from charm import HttprequestLegoProviderCharm
from ops import testing

from tests.real_service import RealService, real_service
from tests.states import CONFIG, CONTAINER, MIGRATE, container, ready_state, service_environment
from tests.test_actions import MANAGE, started

ACCOUNT = (*MANAGE, "create_acmedns_account")
ROTATE = (*MANAGE, "rotate_password")


@pytest.fixture
def service(ctx: testing.Context[HttprequestLegoProviderCharm]) -> Iterator[RealService]:
    """The real service, with user alice granted example.com."""
    environment = service_environment(started(ctx))
    with real_service(environment) as real:
        real.ok(environment, "create_user", "alice")
        real.ok(environment, "allow_domains", "alice", "--domains", "example.com")
        yield real


def the_call(
    ctx: testing.Context[HttprequestLegoProviderCharm], prefix: tuple[str, ...]
) -> list[str]:
    """The one command the action ran in the workload."""
    [call] = [c for c in ctx.exec_history[CONTAINER] if tuple(c.command[:3]) == prefix]
    assert call.user == "_daemon_"
    assert call.working_dir == "/django/app"
    return list(call.command)


def test_create_acmedns_account_returns_the_account_file_lego_reads(ctx, service):
    params = {
        "username": "alice",
        "domain": "example.com",
        "allowfrom": "192.0.2.0/24, 2001:db8::/32",
        "server-url": "https://lego.example",
    }
    arguments = [
        "create_acmedns_account",
        "alice",
        "example.com",
        "--allowfrom",
        "192.0.2.0/24,2001:db8::/32",
        "--server-url",
        "https://lego.example",
    ]
    state = started(ctx)
    output = service.ok(service_environment(state), *arguments)
    state = started(ctx, testing.Exec(ACCOUNT, stdout=output))

    ctx.run(ctx.on.action("create-acmedns-account", params=params), state)

    assert ctx.action_results == {"account": output.strip()}
    entry = json.loads(ctx.action_results["account"])["example.com"]
    assert entry["fulldomain"] == "_acme-challenge.example.com"
    assert entry["server_url"] == "https://lego.example"
    assert {"subdomain", "username", "password"} <= set(entry)
    assert the_call(ctx, ACCOUNT) == [*MANAGE, *arguments]


def test_a_delegated_account_is_asked_for_with_the_flag(ctx):
    state = started(ctx, testing.Exec(ACCOUNT, stdout='{"example.com": {}}'))

    ctx.run(
        ctx.on.action(
            "create-acmedns-account",
            params={"username": "alice", "domain": "example.com", "delegated": True},
        ),
        state,
    )

    assert the_call(ctx, ACCOUNT)[2:] == [
        "create_acmedns_account",
        "alice",
        "example.com",
        "--delegated",
    ]


@pytest.mark.parametrize(
    ("params", "refusal"),
    [
        ({"domain": "other.org"}, "holds no grant covering other.org"),
        ({"domain": "example.com", "delegated": True}, "set DJANGO_ACMEDNS_ZONE"),
        ({"domain": "example.com", "allowfrom": "not-a-network"}, "allowfrom"),
    ],
    ids=["name not granted", "no delegation zone", "bad network"],
)
def test_a_refused_account_fails_with_the_commands_error_line(ctx, service, params, refusal):
    state = started(ctx)
    arguments = ["create_acmedns_account", "alice", params["domain"]]
    if params.get("delegated"):
        arguments.append("--delegated")
    if "allowfrom" in params:
        arguments += ["--allowfrom", params["allowfrom"]]
    real = service.run(service_environment(state), *arguments)
    assert real.returncode == 1, real.stderr
    last_line = real.stderr.strip().splitlines()[-1]
    assert refusal in last_line
    failing = testing.Exec(ACCOUNT, return_code=1, stderr=real.stderr)
    state = started(ctx, failing)

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(
            ctx.on.action("create-acmedns-account", params={"username": "alice", **params}),
            state,
        )

    assert failure.value.message == f"create_acmedns_account failed (exit 1): {last_line}"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"username": "alice"}, "missing parameter domain"),
        ({"username": "alice", "domain": "--help"}, "invalid domain"),
        ({"username": "alice", "domain": "a.org", "allowfrom": "-x"}, "invalid entry"),
        ({"username": "alice", "domain": "a.org", "server-url": "--delegated"}, "server-url"),
    ],
)
def test_bad_account_parameters_fail_without_running_anything(ctx, params, message):
    state = started(ctx, testing.Exec(MANAGE))

    with pytest.raises(testing.ActionFailed, match=message):
        ctx.run(ctx.on.action("create-acmedns-account", params=params), state)

    assert ctx.exec_history.get(CONTAINER, []) == []


def test_output_that_is_not_an_account_file_fails_the_action(ctx):
    state = started(ctx, testing.Exec(ACCOUNT, stdout="created\n"))

    with pytest.raises(testing.ActionFailed, match="unexpected output"):
        ctx.run(
            ctx.on.action(
                "create-acmedns-account", params={"username": "alice", "domain": "example.com"}
            ),
            state,
        )


def test_rotate_password_returns_only_the_new_password(ctx, service):
    state = started(ctx)
    output = service.ok(service_environment(state), "rotate_password", "alice")
    [password] = [
        line.removeprefix("password: ")
        for line in output.splitlines()
        if line.startswith("password: ")
    ]
    state = started(ctx, testing.Exec(ROTATE, stdout=output))

    ctx.run(ctx.on.action("rotate-password", params={"username": "alice"}), state)

    assert ctx.action_results == {"password": password}
    assert the_call(ctx, ROTATE) == [*MANAGE, "rotate_password", "alice"]


def test_rotating_the_password_of_an_unknown_user_fails_with_the_error(ctx, service):
    state = started(ctx)
    real = service.run(service_environment(state), "rotate_password", "bob")
    assert real.returncode == 1, real.stderr
    state = started(ctx, testing.Exec(ROTATE, return_code=1, stderr=real.stderr))

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("rotate-password", params={"username": "bob"}), state)

    assert failure.value.message == "rotate_password failed (exit 1): CommandError: no user 'bob'"


def test_rotate_password_output_without_a_password_fails_the_action(ctx):
    state = started(ctx, testing.Exec(ROTATE, stdout="rotated\n"))

    with pytest.raises(testing.ActionFailed, match="unexpected output"):
        ctx.run(ctx.on.action("rotate-password", params={"username": "alice"}), state)


def test_the_new_actions_need_a_configured_service(ctx):
    state = ready_state(containers={container(can_connect=False)})

    with pytest.raises(testing.ActionFailed, match="not configured yet"):
        ctx.run(ctx.on.action("rotate-password", params={"username": "alice"}), state)


def test_with_a_delegation_zone_a_delegated_account_is_named_under_it(ctx):
    workload = container(execs=frozenset({testing.Exec(MIGRATE)}))
    state = ready_state(
        config={**CONFIG, "acmedns-zone": "acme.example.com"}, containers={workload}
    )
    state = ctx.run(ctx.on.pebble_ready(workload), state)
    environment = service_environment(state)
    assert environment["DJANGO_ACMEDNS_ZONE"] == "acme.example.com"
    with real_service(environment) as service:
        service.ok(environment, "create_user", "alice")
        service.ok(environment, "allow_domains", "alice", "--domains", "example.com")
        output = service.ok(
            environment, "create_acmedns_account", "alice", "example.com", "--delegated"
        )
    state = started(ctx, testing.Exec(ACCOUNT, stdout=output))
    params = {"username": "alice", "domain": "example.com", "delegated": True}

    ctx.run(ctx.on.action("create-acmedns-account", params=params), state)

    entry = json.loads(ctx.action_results["account"])["example.com"]
    assert entry["fulldomain"] == f"{entry['subdomain']}.acme.example.com"
