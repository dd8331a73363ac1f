"""The janitor withdraws records no client cleaned up (real PostgreSQL, the in-memory backend).

Records are published through the same recorded backend the endpoints use; their age is moved
back in the database, which is where the janitor reads it from.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from api import audit
from api.janitor import sweep
from api.metrics import PublishedRecordsCollector
from api.models import AuditAction, AuditEvent, AuditResult, PublishedRecord
from api.recorded_backend import recorded_backend
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from dns_backends import Deadline, DnsBackendUnavailableError
from dns_backends.memory import MemoryBackend

from tests.audit_helpers import sample

NAME = "_acme-challenge.www.example.com"
VALUES = [
    "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM",
    "2fhvH1G9wA0pe6WTVd7PkZp9hHYiXflNyUEfQLfcklc",
    "wd3tqYY2MfDmZl3b63Su2pJ6J5wqkbUkvmNhT1ZL5fQ",
]
MAX_AGE = 3 * 3600


def present(name: str, value: str, *, via: str = "httpreq", age: float = 0) -> None:
    with audit.acting(actor="machine", via=via):
        recorded_backend().present(name, value)
    if age:
        presented = timezone.now() - timedelta(seconds=age)
        PublishedRecord.objects.filter(name=name, value=value).update(presented_at=presented)


@pytest.mark.django_db
def test_a_stale_record_is_withdrawn_like_a_cleanup_and_a_fresh_one_is_kept(
    memory_backend: MemoryBackend,
) -> None:
    present(NAME, VALUES[0], age=MAX_AGE + 60)
    present(NAME, VALUES[1], age=MAX_AGE - 60)
    before = sample(
        "lego_provider_record_changes_total",
        operation="cleanup",
        via="janitor",
        backend="memory",
        outcome="ok",
        reason="",
    )
    swept = sweep(MAX_AGE)
    assert [(item.name, item.withdrawn) for item in swept] == [(NAME, True)]
    assert memory_backend.values(NAME) == {VALUES[1]}
    assert list(PublishedRecord.objects.values_list("value", flat=True)) == [VALUES[1]]
    (row,) = AuditEvent.objects.filter(action=AuditAction.CLEANUP)
    assert (row.actor, row.via, row.name, row.result) == ("janitor", "janitor", NAME, "ok")
    assert row.value_digest == audit.value_digest(VALUES[0])
    after = sample(
        "lego_provider_record_changes_total",
        operation="cleanup",
        via="janitor",
        backend="memory",
        outcome="ok",
        reason="",
    )
    assert after == before + 1


@pytest.mark.django_db
def test_the_dry_run_lists_what_it_would_remove_and_removes_nothing(
    memory_backend: MemoryBackend,
) -> None:
    present(NAME, VALUES[0], age=MAX_AGE + 60)
    out = StringIO()
    call_command("janitor", "--dry-run", "--max-age", str(MAX_AGE), stdout=out)
    assert f"would remove {NAME} {audit.value_digest(VALUES[0])}" in out.getvalue()
    assert "1 stale" in out.getvalue()
    assert VALUES[0] not in out.getvalue()
    assert memory_backend.values(NAME) == {VALUES[0]}
    assert PublishedRecord.objects.count() == 1
    call_command("janitor", "--max-age", str(MAX_AGE), stdout=StringIO())
    assert memory_backend.values(NAME) == set()


@pytest.mark.django_db
def test_acme_dns_values_are_never_swept(memory_backend: MemoryBackend) -> None:
    present("abc.example.com", VALUES[0], via="acme-dns", age=30 * 86400)
    assert sweep(MAX_AGE) == []
    assert memory_backend.values("abc.example.com") == {VALUES[0]}


@pytest.mark.django_db
def test_presenting_a_value_again_makes_it_fresh(memory_backend: MemoryBackend) -> None:
    present(NAME, VALUES[0], age=MAX_AGE + 60)
    present(NAME, VALUES[0])
    assert sweep(MAX_AGE) == []
    assert memory_backend.values(NAME) == {VALUES[0]}


@pytest.mark.django_db
def test_a_client_cleanup_forgets_the_record(memory_backend: MemoryBackend) -> None:
    present(NAME, VALUES[0], age=MAX_AGE + 60)
    with audit.acting(actor="machine", via="httpreq"):
        recorded_backend().cleanup(NAME, VALUES[0])
    assert PublishedRecord.objects.count() == 0
    assert sweep(MAX_AGE) == []


@pytest.mark.django_db
def test_a_failed_withdrawal_is_audited_kept_and_retried_by_the_next_sweep(
    memory_backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    present(NAME, VALUES[0], age=MAX_AGE + 60)

    def unavailable(fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise DnsBackendUnavailableError()

    with monkeypatch.context() as patch:
        patch.setattr(memory_backend, "cleanup", unavailable)
        (failed,) = sweep(MAX_AGE)
    assert not failed.withdrawn
    assert "unavailable" in failed.error
    (row,) = AuditEvent.objects.filter(action=AuditAction.CLEANUP)
    assert (row.result, row.actor) == (AuditResult.FAILED, "janitor")
    assert PublishedRecord.objects.count() == 1
    (retried,) = sweep(MAX_AGE)
    assert retried.withdrawn
    assert memory_backend.values(NAME) == set()


@pytest.mark.django_db
def test_a_present_the_backend_failed_is_remembered_for_the_janitor_but_not_counted_published(
    memory_backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row is written before the backend is asked: a value that may be in DNS is known."""

    def unavailable(fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        raise DnsBackendUnavailableError()

    monkeypatch.setattr(memory_backend, "present", unavailable)
    with pytest.raises(DnsBackendUnavailableError), audit.acting(via="httpreq"):
        recorded_backend().present(NAME, VALUES[0])
    (record,) = PublishedRecord.objects.all()
    assert not record.confirmed
    (row,) = AuditEvent.objects.filter(action=AuditAction.PRESENT)
    assert row.result == AuditResult.FAILED
    assert "unavailable" in row.reason
    assert published_gauge() == {}


def published_gauge() -> dict[str, float]:
    families = {family.name: family for family in PublishedRecordsCollector().collect()}
    return {
        sample.labels["via"]: sample.value
        for sample in families["lego_provider_records_published"].samples
    }


@pytest.mark.django_db
def test_the_published_records_gauge_counts_confirmed_records_by_path(
    memory_backend: MemoryBackend,
) -> None:
    present(NAME, VALUES[0], age=600)
    present(NAME, VALUES[1])
    present("abc.example.com", VALUES[2], via="acme-dns")
    assert published_gauge() == {"httpreq": 2, "acme-dns": 1}
    families = {family.name: family for family in PublishedRecordsCollector().collect()}
    oldest = {s.labels["via"]: s.value for s in families[
        "lego_provider_records_oldest_age_seconds"].samples}  # fmt: skip
    assert oldest["httpreq"] >= 600 > oldest["acme-dns"]


class SlowCountingBackend:
    """The memory backend, with withdrawals that take a while and are counted per value."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self._withdraw = inner.cleanup
        self.withdrawals: Counter[str] = Counter()
        self._lock = threading.Lock()

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        with self._lock:
            self.withdrawals[value] += 1
        time.sleep(0.2)
        self._withdraw(fqdn, value, deadline)


@pytest.fixture
def slow_backend(
    memory_backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> SlowCountingBackend:
    slow = SlowCountingBackend(memory_backend)
    monkeypatch.setattr(memory_backend, "cleanup", slow.cleanup)
    return slow


@pytest.mark.django_db(transaction=True)
def test_two_janitors_at_once_withdraw_each_stale_record_exactly_once(
    slow_backend: SlowCountingBackend,
) -> None:
    """Two units sweeping the same database (two threads, two connections) share the work."""
    for value in VALUES:
        present(NAME, value, age=MAX_AGE + 60)
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def janitor() -> None:
        try:
            barrier.wait()
            results.append([item.value_digest for item in sweep(MAX_AGE) if item.withdrawn])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=janitor) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert slow_backend.withdrawals == Counter(VALUES)
    assert sorted(digest for result in results for digest in result) == sorted(
        audit.value_digest(value) for value in VALUES
    )
    assert slow_backend.inner.values(NAME) == set()
    cleanups = AuditEvent.objects.filter(action=AuditAction.CLEANUP, actor="janitor")
    assert cleanups.count() == len(VALUES)
