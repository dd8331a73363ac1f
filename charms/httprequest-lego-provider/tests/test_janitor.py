"""The janitor worker: ``manage.py janitor --every`` beside gunicorn, on every unit.

What the janitor makes of its environment is asked of the real service: its settings reader
(``api.operations``) and one real dry-run sweep from the service's source against a database
of the test's own on the local PostgreSQL (``tests.real_service``).
"""

from __future__ import annotations

import dataclasses

import yaml
from charm import HttprequestLegoProviderCharm
from ops import pebble, testing

from tests.real_service import real_service
from tests.states import CONFIG, CONTAINER, PROVIDER, SERVICE, ready_state, service_environment
from tests.test_events import service_reads

WORKER = "janitor-worker"


def started(
    ctx: testing.Context[HttprequestLegoProviderCharm], **options: object
) -> testing.State:
    """A started unit with the given options on top of the tests' configuration."""
    state = ready_state(config={**CONFIG, **options})
    return ctx.run(ctx.on.pebble_ready(state.get_container(CONTAINER)), state)


def test_the_janitor_runs_beside_the_service_with_its_environment(ctx):
    out = started(ctx)

    container = out.get_container(CONTAINER)
    janitor = container.plan.services[WORKER]
    assert janitor.command == "/bin/python3 manage.py janitor --every"
    assert janitor.user == "_daemon_"
    assert janitor.working_dir == "/django/app"
    assert container.service_statuses[WORKER] == pebble.ServiceStatus.ACTIVE
    assert dict(janitor.environment) == {
        **service_environment(out),
        "DJANGO_JANITOR_MAX_AGE": "10800",
    }
    assert "DJANGO_JANITOR_MAX_AGE" not in service_environment(out)
    expression = "OperationsSettings.from_env(os.environ).janitor_max_age"
    assert service_reads(dict(janitor.environment), expression) == 10800


def test_the_janitors_command_really_sweeps_with_that_environment(ctx):
    out = started(ctx, **{"janitor-max-age": 600})
    environment = dict(out.get_container(CONTAINER).plan.services[WORKER].environment)
    command = out.get_container(CONTAINER).plan.services[WORKER].command.split()
    assert command[1:4] == ["manage.py", "janitor", "--every"]

    with real_service(environment) as service:
        # The same command and environment, once and listing only (--every would loop).
        output = service.ok(environment, "janitor", "--dry-run")

    assert output.strip().endswith("0 stale; would prune 0 audit rows")


def test_a_new_max_age_restarts_the_janitor_only(ctx):
    before = started(ctx)
    web = before.get_container(CONTAINER).plan.services[SERVICE]
    state = dataclasses.replace(before, config={**CONFIG, "janitor-max-age": 3600})

    out = ctx.run(ctx.on.config_changed(), state)

    plan = out.get_container(CONTAINER).plan
    assert plan.services[SERVICE] == web
    assert plan.services[WORKER].environment["DJANGO_JANITOR_MAX_AGE"] == "3600"


def test_the_max_age_default_is_the_services_own():
    options = yaml.safe_load((PROVIDER.root / "charmcraft.yaml").read_text())["config"]["options"]
    default = PROVIDER.service_constant("api.operations", "DEFAULT_JANITOR_MAX_AGE_SECONDS")
    assert options["janitor-max-age"]["default"] == default


def test_the_janitor_stops_with_the_database_and_starts_again_with_it(ctx):
    before = started(ctx)
    db = next(r for r in before.relations if r.endpoint == "postgresql")
    gone = ctx.run(ctx.on.relation_broken(db), before)
    assert gone.get_container(CONTAINER).service_statuses[WORKER] == pebble.ServiceStatus.INACTIVE

    # The database is back (the relation as before), the container as the charm left it.
    returned = dataclasses.replace(before, containers=gone.containers)
    back = ctx.run(ctx.on.pebble_ready(returned.get_container(CONTAINER)), returned)

    assert back.get_container(CONTAINER).service_statuses[WORKER] == pebble.ServiceStatus.ACTIVE
