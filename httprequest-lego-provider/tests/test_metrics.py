"""The service's metrics, counted in this process (real PostgreSQL, the in-memory backend).

The sum over gunicorn workers is checked in test_metrics_gunicorn.py; that git's lost push races
reach the backend events is checked in tests/dns_backends/test_git_ssh.py.
"""

from __future__ import annotations

from base64 import b64encode

import pytest
from api.metrics import FAILURE_REASONS, KNOWN_VIAS, failure_reason, metrics
from django.test.utils import override_settings
from dns_backends import (
    BACKENDS,
    DeadlineExceededError,
    DnsBackendError,
    DnsBackendUnavailableError,
    InvalidRecordError,
    ZoneNotFoundError,
    events,
)
from dns_backends.memory import MemoryBackend
from httprequest_lego_provider.environment import LoginThrottleLimits
from rest_framework.test import APIClient

from tests.audit_helpers import sample
from tests.conftest import Account, make_account

pytestmark = pytest.mark.django_db

VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"
OTHER = "2fhvH1G9wA0pe6WTVd7PkZp9hHYiXflNyUEfQLfcklc"


def changes(operation: str, outcome: str, reason: str = "", via: str = "httpreq") -> float:
    return sample(
        "lego_provider_record_changes_total",
        operation=operation,
        via=via,
        backend="memory",
        outcome=outcome,
        reason=reason,
    )


def backend_calls(operation: str) -> float:
    return sample("lego_provider_backend_seconds_count", operation=operation, backend="memory")


def post(account: Account, path: str, fqdn: str, value: str = VALUE) -> int:
    body = {"fqdn": fqdn, "value": value}
    return int(account.client().post(path, body, format="json").status_code)


def test_presents_and_cleanups_are_counted_by_outcome_and_timed(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    before = {
        "ok": changes("present", "ok"),
        "refused": changes("present", "refused", "not_allowed"),
        "failed": changes("present", "failed", "zone_not_found"),
        "cleanup": changes("cleanup", "ok"),
        "timed": backend_calls("present"),
    }
    assert post(machine, "/present", "_acme-challenge.www.example.com.") == 200
    assert post(machine, "/present", "_acme-challenge.other.example.com.") == 403
    outside = make_account("outside", domains="www.example.org")
    assert post(outside, "/present", "_acme-challenge.www.example.org.") >= 400
    assert post(machine, "/cleanup", "_acme-challenge.www.example.com.") == 200
    assert changes("present", "ok") == before["ok"] + 1
    assert changes("present", "refused", "not_allowed") == before["refused"] + 1
    assert changes("present", "failed", "zone_not_found") == before["failed"] + 1
    assert changes("cleanup", "ok") == before["cleanup"] + 1
    # The refused present never reached the backend; the failed one did.
    assert backend_calls("present") == before["timed"] + 2


def test_no_label_carries_a_user_a_name_or_a_value(
    machine: Account, memory_backend: MemoryBackend
) -> None:
    post(machine, "/present", "_acme-challenge.www.example.com.")
    post(machine, "/present", "_acme-challenge.secret-project.example.com.", OTHER)
    APIClient().post("/present", {}, HTTP_AUTHORIZATION="Basic " + b64encode(b"eve:x").decode())
    label_values = {
        value
        for family in metrics().registry.collect()
        for metric_sample in family.samples
        for name, value in metric_sample.labels.items()
        if name != "le"
    }
    assert label_values, "nothing was counted"
    for value in label_values:
        assert "example" not in value
        assert "machine" not in value
        assert "eve" not in value
        assert VALUE not in value
        assert OTHER not in value
    allowed = KNOWN_VIAS | set(BACKENDS) | {"present", "cleanup", "replace", "other", ""}
    allowed |= {"ok", "refused", "failed", "not_allowed", "internal", "throttled"}
    allowed |= {reason for _, reason in FAILURE_REASONS}
    assert label_values <= allowed


def test_a_wrong_password_counts_one_refused_authentication(machine: Account) -> None:
    before = sample("lego_provider_authentication_failures_total", outcome="refused")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + b64encode(b"machine:wrong").decode())
    assert client.post("/present", {"fqdn": "x", "value": "y"}).status_code == 401
    after = sample("lego_provider_authentication_failures_total", outcome="refused")
    assert after == before + 1


def test_a_locked_out_login_counts_as_throttled(machine: Account) -> None:
    limits = LoginThrottleLimits(per_username=1, per_address=0, window_seconds=60, proxy_hops=0)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + b64encode(b"nobody:wrong").decode())
    before = sample("lego_provider_authentication_failures_total", outcome="throttled")
    with override_settings(LOGIN_THROTTLE=limits):
        assert client.post("/present", {}).status_code == 401
        assert client.post("/present", {}).status_code == 429
    after = sample("lego_provider_authentication_failures_total", outcome="throttled")
    assert after == before + 1


def test_push_conflicts_and_retries_reported_by_a_backend_are_counted() -> None:
    conflicts = sample("lego_provider_push_conflicts_total", backend="git")
    retries = sample("lego_provider_push_retries_total", backend="git")
    events.emit("git", events.PUSH_CONFLICT)
    events.emit("git", events.PUSH_CONFLICT)
    events.emit("git", events.PUSH_RETRY)
    assert sample("lego_provider_push_conflicts_total", backend="git") == conflicts + 2
    assert sample("lego_provider_push_retries_total", backend="git") == retries + 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (DeadlineExceededError(30, "pushing"), "deadline"),
        (ZoneNotFoundError("_acme-challenge.example.org"), "zone_not_found"),
        (InvalidRecordError(), "invalid_record"),
        (DnsBackendUnavailableError(), "unavailable"),
        (DnsBackendError(), "backend_error"),
        (RuntimeError("boom"), "internal"),
    ],
)
def test_a_failure_is_labelled_by_its_class_never_its_message(
    error: Exception, reason: str
) -> None:
    assert failure_reason(error) == reason
