"""Database round trips per request: each costs about half a millisecond under gevent.

The hot paths (a present, an acme-dns update) are bounded here by count, not by time: the
bounds are today's counts, so a change that adds a query has to raise them on purpose.
"""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from dns_backends.memory import MemoryBackend

from tests.conftest import Account
from tests.test_acmedns_update import DIRECT_NAME, VALUES, body_for, new_account, update
from tests.test_metrics import post

# Counted against PostgreSQL inside the test's transaction (savepoints stand for the
# transactions a request opens).
PRESENT_QUERIES = 9
UPDATE_QUERIES = 23


def test_a_present_makes_at_most_nine_queries(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    post(machine, "/present", "_acme-challenge.www.example.com.")  # the credential is cached
    with CaptureQueriesContext(connection) as queries:
        assert post(machine, "/present", "_acme-challenge.www.example.com.", "b" * 43) == 200
    assert len(queries) <= PRESENT_QUERIES, [q["sql"][:80] for q in queries.captured_queries]


def test_an_acmedns_update_withdrawing_the_oldest_value_makes_at_most_23_queries(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    new = new_account()
    for value in VALUES[:2]:
        assert update(new, body_for(new, value))[0] == 200
    with CaptureQueriesContext(connection) as queries:
        assert update(new, body_for(new, VALUES[2]))[0] == 200
    assert len(queries) <= UPDATE_QUERIES, [q["sql"][:80] for q in queries.captured_queries]
    assert memory_backend.values(DIRECT_NAME) == set(VALUES[1:3])
