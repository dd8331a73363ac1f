"""Event tests that hold for every twelve-factor charm: the base charm's own behaviour.

A charm's ``tests/test_events.py`` subclasses :class:`EventContract`, setting ``subject``; pytest
then runs these tests against that charm (the ``ctx`` fixture comes from its conftest).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ops import pebble, testing

from testing_support.states import peer_relation
from testing_support.subject import CharmUnderTest


class EventContract:
    """Tests of the events every twelve-factor charm handles through the base."""

    subject: ClassVar[CharmUnderTest]

    def test_config_changed_while_container_unreachable_waits_without_crashing(
        self, ctx: testing.Context[Any]
    ) -> None:
        container = self.subject.container
        unreachable = testing.Container(container, can_connect=False)
        state = self.subject.ready_state(containers={unreachable})

        out = ctx.run(ctx.on.config_changed(), state)

        assert out.unit_status == testing.WaitingStatus(f"waiting for the {container} container")
        assert out.get_container(container).plan.services == {}

    def test_relation_created_requests_the_database_as_leader(
        self, ctx: testing.Context[Any]
    ) -> None:
        db = testing.Relation(self.subject.database)
        state = self.subject.ready_state(relations={db, peer_relation()}, secrets=set())

        out = ctx.run(ctx.on.relation_created(db), state)

        assert out.get_relation(db.id).local_app_data == {
            "database": self.subject.database_name,
            "requested-secrets": json.dumps(["username", "password", "tls", "tls-ca", "uris"]),
        }
        assert out.unit_status == testing.WaitingStatus(
            f"waiting for the {self.subject.database} database"
        )

    def test_database_relation_broken_blocks_and_stops_the_service(
        self, ctx: testing.Context[Any]
    ) -> None:
        state = self.subject.ready_state()
        started = ctx.run(ctx.on.pebble_ready(state.get_container(self.subject.container)), state)
        db = next(r for r in started.relations if r.endpoint == self.subject.database)

        out = ctx.run(ctx.on.relation_broken(db), started)

        assert out.unit_status == testing.BlockedStatus(
            f"missing required integration: {self.subject.database}"
        )
        statuses = out.get_container(self.subject.container).service_statuses
        assert statuses[self.subject.service] == pebble.ServiceStatus.INACTIVE

    def test_without_the_database_the_unit_is_blocked(self, ctx: testing.Context[Any]) -> None:
        state = self.subject.ready_state(relations={peer_relation()}, secrets=set())

        out = ctx.run(ctx.on.update_status(), state)

        assert out.unit_status == testing.BlockedStatus(
            f"missing required integration: {self.subject.database}"
        )
