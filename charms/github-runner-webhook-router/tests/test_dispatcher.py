"""The optional runner dispatcher: a second Pebble service, ``dispatcher-worker``, or none.

What the dispatcher makes of the environment the charm gives it is asked of the real
``runner_dispatcher.settings`` from the rock root (its own reader, as the worker runs it); the
service's acceptance of each option value is in ``config_table.json``, run through the real
check by ``test_config_table``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import dispatcher
import yaml
from charm import GithubRunnerWebhookRouterCharm
from ops import pebble, testing
from testing_support.states import with_relation

from tests.states import CONFIG, CONTAINER, ROUTER, SERVICE, THREE_HOST_URI, ready_state

WORKER = "dispatcher-worker"
CHECK = "dispatcher-worker-health"
SPAWNER = "/opt/spawner/start-runner --cloud lxd"


def configured(
    ctx: testing.Context[GithubRunnerWebhookRouterCharm], **options: object
) -> testing.State:
    """A started unit with the given options on top of the tests' configuration."""
    state = ready_state(config={**CONFIG, **options})
    return ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)


def plan(state: testing.State) -> testing.Container:
    return state.get_container(CONTAINER)


def dispatcher_reads(environment: dict[str, str]) -> dict[str, object]:
    """What the real dispatcher's settings make of the worker's environment."""
    program = (
        "import json, os\n"
        "from runner_dispatcher.settings import Settings\n"
        "s = Settings.from_env(os.environ)\n"
        "print(json.dumps({'flavours': list(s.flavours), 'command': list(s.spawn_command),\n"
        "    'labels': sorted(s.supported_labels), 'consumers': s.consumers,\n"
        "    'broker_url': s.broker_url, 'health_port': s.health_port,\n"
        "    'lifecycle_events': s.lifecycle_events}))\n"
    )
    result = subprocess.run(  # a fixed program over the environment the charm built
        [sys.executable, "-c", program],
        cwd=ROUTER.workload_source,
        env={**environment, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_without_a_spawn_command_only_the_router_runs(ctx):
    out = configured(ctx)

    container = plan(out)
    assert set(container.plan.services) == {SERVICE}
    assert CHECK not in container.plan.checks
    assert not any(
        k.startswith("DISPATCHER_") for k in container.plan.services[SERVICE].environment
    )
    assert out.unit_status == testing.ActiveStatus()


def test_with_a_spawn_command_the_dispatcher_runs_beside_the_router(ctx):
    out = configured(ctx, **{"dispatcher-spawn-command": SPAWNER})

    container = plan(out)
    service = container.plan.services[WORKER]
    assert service.command == "/bin/python3 -m runner_dispatcher"
    assert service.working_dir == "/flask/app"
    assert service.user == "_daemon_"
    assert service.startup == "enabled"
    assert service.on_check_failure == {CHECK: "restart"}
    assert container.service_statuses[WORKER] == pebble.ServiceStatus.ACTIVE
    router_env = dict(container.plan.services[SERVICE].environment)
    # The router's environment (broker, proxies, state) plus the dispatcher's own variables;
    # the router's own environment stays without them (a dispatcher change never restarts it).
    assert {k: v for k, v in service.environment.items() if not k.startswith("DISPATCHER_")} == (
        router_env
    )
    assert not any(k.startswith("DISPATCHER_") for k in router_env)
    assert service.environment["DISPATCHER_BROKER_URL"] == THREE_HOST_URI
    assert dispatcher_reads(dict(service.environment)) == {
        "flavours": ["small", "large"],  # every flavour of the routing table
        "command": ["/opt/spawner/start-runner", "--cloud", "lxd"],
        "labels": ["x64"],
        "consumers": 16,
        "broker_url": THREE_HOST_URI,  # the router's MongoDB, from the same relation
        "health_port": 9104,
        "lifecycle_events": False,  # as the router's lifecycle-events option
    }
    out_check = container.plan.checks[CHECK]
    assert out_check.http == {"url": "http://127.0.0.1:9104/health"}
    # No level: Juju makes the alive and ready levels the pod's probes; a dispatcher whose
    # broker is down must not get the router's container restarted.
    assert out_check.level in (None, "", pebble.CheckLevel.UNSET)


def test_the_dispatcher_options_reach_the_dispatcher(ctx):
    out = configured(
        ctx,
        **{
            "dispatcher-spawn-command": '["/opt/spawner/start", "--one arg"]',
            "dispatcher-flavours": "large",
            "dispatcher-labels": "gpu, Large-Disk",
            "dispatcher-consumers": 4,
        },
    )

    environment = dict(plan(out).plan.services[WORKER].environment)
    read = dispatcher_reads(environment)
    assert read["flavours"] == ["large"]
    assert read["command"] == ["/opt/spawner/start", "--one arg"]  # one argument, no shell
    assert read["labels"] == ["gpu", "large-disk", "x64"]
    assert read["consumers"] == 4


def test_lifecycle_events_on_make_the_dispatcher_consume_them_too(ctx):
    """The router publishes the events and the dispatcher beside it uses them."""
    out = configured(ctx, **{"dispatcher-spawn-command": SPAWNER, "lifecycle-events": True})

    services = plan(out).plan.services
    assert services[SERVICE].environment["FLASK_LIFECYCLE_EVENTS"] == "true"
    assert services[WORKER].environment["DISPATCHER_LIFECYCLE_EVENTS"] == "true"
    assert dispatcher_reads(dict(services[WORKER].environment))["lifecycle_events"] is True
    assert "DISPATCHER_LIFECYCLE_EVENTS" not in services[SERVICE].environment


def test_the_health_port_collides_with_neither_metrics_port(ctx):
    metrics = testing.Relation("metrics-endpoint")
    state = with_relation(
        ready_state(config={**CONFIG, "dispatcher-spawn-command": SPAWNER}), metrics
    )

    out = ctx.run(ctx.on.relation_joined(metrics, remote_unit=0), state)

    jobs = json.loads(out.get_relation(metrics.id).local_app_data["scrape_jobs"])
    scraped = {
        int(t.rsplit(":", 1)[1])
        for job in jobs
        for c in job["static_configs"]
        for t in c["targets"]
    }
    assert scraped == {9102, 9103}
    health = dispatcher_reads(dict(plan(out).plan.services[WORKER].environment))["health_port"]
    assert health not in scraped


def test_changing_only_the_dispatcher_leaves_the_router_running_as_it_was(ctx):
    before = configured(ctx, **{"dispatcher-spawn-command": SPAWNER})
    router = plan(before).plan.services[SERVICE]
    state = dataclasses.replace(
        before, config={**CONFIG, "dispatcher-spawn-command": SPAWNER, "dispatcher-consumers": 2}
    )

    out = ctx.run(ctx.on.config_changed(), state)

    assert plan(out).plan.services[SERVICE] == router
    assert plan(out).plan.services[WORKER].environment["DISPATCHER_CONSUMERS"] == "2"


def test_an_unchanged_configuration_does_not_touch_the_plan_again(ctx):
    before = configured(ctx, **{"dispatcher-spawn-command": SPAWNER})
    ctx.exec_history.clear()

    out = ctx.run(ctx.on.config_changed(), before)

    assert plan(out).plan == plan(before).plan
    assert ctx.exec_history.get(CONTAINER, []) == []  # not even the configuration check


def test_emptying_the_spawn_command_stops_the_dispatcher_for_good(ctx):
    before = configured(ctx, **{"dispatcher-spawn-command": SPAWNER})
    state = dataclasses.replace(before, config={**CONFIG, "dispatcher-spawn-command": ""})

    out = ctx.run(ctx.on.config_changed(), state)

    container = plan(out)
    assert container.plan.services[WORKER].startup == "disabled"
    assert container.service_statuses[WORKER] == pebble.ServiceStatus.INACTIVE
    assert container.service_statuses[SERVICE] == pebble.ServiceStatus.ACTIVE
    assert out.unit_status == testing.ActiveStatus()

    again = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(out, config={**CONFIG, "dispatcher-spawn-command": SPAWNER}),
    )

    assert plan(again).plan.services[WORKER].startup == "enabled"
    assert plan(again).service_statuses[WORKER] == pebble.ServiceStatus.ACTIVE


def test_the_default_flavours_are_the_routing_tables_queues():
    assert dispatcher.flavour_names("- small: [x64]\n- large: [x64, large]\n") == (
        "small",
        "large",
    )
    assert dispatcher.flavour_names("[unclosed") == ()  # the router's own check says why
    assert dispatcher.flavour_names("small: [x64]") == ()


def test_the_consumers_default_is_the_dispatchers_own():
    options = yaml.safe_load((ROUTER.root / "charmcraft.yaml").read_text())["config"]["options"]
    default = ROUTER.service_constant("runner_dispatcher.settings", "DEFAULT_CONSUMERS")
    assert options["dispatcher-consumers"]["default"] == default


def test_the_github_token_from_a_user_secret_reaches_the_dispatcher_only(ctx):
    token = testing.Secret(tracked_content={"token": "ghp_dispatcher"})
    state = ready_state(
        config={**CONFIG, "dispatcher-spawn-command": SPAWNER, "dispatcher-github-token": token.id}
    )
    state = dataclasses.replace(state, secrets=state.secrets | {token})

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    services = plan(out).plan.services
    assert services[WORKER].environment["GITHUB_TOKEN"] == "ghp_dispatcher"
    assert "GITHUB_TOKEN" not in services[SERVICE].environment
    program = (
        "import os\n"
        "from runner_dispatcher.settings import Settings\n"
        "print(Settings.from_env(os.environ).auth is not None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROUTER.workload_source,
        env={**services[WORKER].environment, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "True", result.stderr  # the dispatcher authenticates


def test_a_token_secret_that_is_not_granted_blocks_with_the_command_to_run(ctx):
    state = ready_state(
        config={
            **CONFIG,
            "dispatcher-spawn-command": SPAWNER,
            "dispatcher-github-token": "secret:cvh7kruupa1s46bqvuig",
        }
    )

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    assert out.unit_status == testing.BlockedStatus(
        "dispatcher-github-token: secret not found; grant it with "
        "'juju grant-secret secret:cvh7kruupa1s46bqvuig github-runner-webhook-router'"
    )
    assert WORKER not in plan(out).plan.services


def test_a_token_secret_without_the_token_key_blocks(ctx):
    token = testing.Secret(tracked_content={"password": "x"})
    state = ready_state(
        config={**CONFIG, "dispatcher-spawn-command": SPAWNER, "dispatcher-github-token": token.id}
    )
    state = dataclasses.replace(state, secrets=state.secrets | {token})

    out = ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)

    assert out.unit_status == testing.BlockedStatus(
        "dispatcher-github-token: the secret has no 'token' key"
    )
