"""The explain-routing action: the service's own explanation, run as the workload runs it.

The tool's answer in these tests is real: ``python -m webhook_router.explain`` from the rock
root, run with the environment the charm gave the service, and on GitHub's published
``workflow_job`` payload; the charm must pass its answer on unchanged.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from charm import GithubRunnerWebhookRouterCharm
from explain_routing import results
from ops import testing

from tests.states import CONTAINER, ROUTER, container, ready_state, service_environment

EXPLAIN = ("/bin/python3", "-m", "webhook_router.explain", "--json")
QUEUED = ROUTER.rock_root / "tests" / "fixtures" / "workflow_job.queued.json"


def real_answer(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """The explain tool's answer, from the service's source, with the service's environment."""
    return subprocess.run(
        [sys.executable, "-m", "webhook_router.explain", "--json", *arguments],
        cwd=ROUTER.workload_source,
        env={**environment, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


def started(ctx: testing.Context[GithubRunnerWebhookRouterCharm]) -> testing.State:
    """A unit whose service runs with the tests' routing table."""
    state = ready_state()
    return ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)


def with_exec(state: testing.State, exec_: testing.Exec) -> testing.State:
    """The state with one more faked command in the workload."""
    workload = state.get_container(CONTAINER)
    workload = dataclasses.replace(workload, execs=workload.execs | {exec_})
    return dataclasses.replace(state, containers=frozenset({workload}))


def test_labels_are_explained_with_the_running_routing_table(ctx):
    state = started(ctx)
    answer = real_answer(service_environment(state), "--labels=self-hosted,linux,X64,large")
    assert answer.returncode == 0, answer.stderr
    state = with_exec(state, testing.Exec(EXPLAIN, stdout=answer.stdout))

    ctx.run(
        ctx.on.action("explain-routing", params={"labels": "self-hosted,linux,X64,large"}), state
    )

    assert ctx.action_results == results(answer.stdout)
    assert ctx.action_results["flavour"] == "large"
    assert ctx.action_results["routed-labels"] == "large,x64"
    [call] = [c for c in ctx.exec_history[CONTAINER] if tuple(c.command[:4]) == EXPLAIN]
    assert call.command[4] == "--labels=self-hosted,linux,X64,large"  # one argument, no shell
    assert call.environment == service_environment(state)


def test_a_stored_delivery_is_explained_and_its_copy_removed(ctx, tmp_path):
    body = QUEUED.read_text()
    state = started(ctx)
    answer = real_answer(service_environment(state), f"--payload={QUEUED}")
    assert answer.returncode == 0, answer.stderr
    state = with_exec(state, testing.Exec(EXPLAIN, stdout=answer.stdout))

    out = ctx.run(ctx.on.action("explain-routing", params={"payload": body}), state)

    assert ctx.action_results == results(answer.stdout)
    assert ctx.action_results["repository-allowed"] == "true"
    [call] = [c for c in ctx.exec_history[CONTAINER] if tuple(c.command[:4]) == EXPLAIN]
    pushed = call.command[4].removeprefix("--payload=")
    root = out.get_container(CONTAINER).get_filesystem(ctx)
    assert not (root / pushed.lstrip("/")).exists()


@pytest.mark.parametrize(
    "params", [{}, {"labels": " "}, {"labels": "large", "payload": "{}"}], ids=str
)
def test_labels_or_a_payload_must_be_given_not_both(ctx, params):
    state = started(ctx)

    with pytest.raises(testing.ActionFailed, match="give labels"):
        ctx.run(ctx.on.action("explain-routing", params=params), state)


def test_a_refusal_of_the_tool_is_reported_with_its_message(ctx):
    state = started(ctx)
    refusal = "configuration error: FLASK_FLAVOURS: not valid YAML (ScannerError)"
    state = with_exec(state, testing.Exec(EXPLAIN, return_code=1, stderr=refusal + "\n"))

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("explain-routing", params={"labels": "large"}), state)

    assert failure.value.message == refusal


def test_explaining_needs_a_configured_service(ctx):
    state = ready_state(containers={container(can_connect=False)})

    with pytest.raises(testing.ActionFailed, match="not configured yet"):
        ctx.run(ctx.on.action("explain-routing", params={"labels": "large"}), state)
