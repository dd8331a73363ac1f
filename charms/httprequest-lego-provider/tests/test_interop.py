"""The provider's relations against the data the real charm libraries write (shared/interop).

Recorded data, not a live peer: PostgreSQL's charm, Traefik, Prometheus, Loki and Grafana
cannot run here (the PostgreSQL server itself is tested by the service's own suite).
"""

from __future__ import annotations

import re

import pytest
from testing_support.interop_contract import (
    InteropContract,
    provider_fixtures,
    with_user_secret,
)

from tests.states import PROVIDER

ANSWERS = provider_fixtures("postgresql_client")


class TestProviderInterop(InteropContract):
    subject = PROVIDER

    @pytest.mark.parametrize("name", ANSWERS)
    def test_the_postgresql_answer_reaches_the_workload(self, ctx, name):
        self.check_database_answer(ctx, name)

    @pytest.mark.parametrize("name", with_user_secret(ANSWERS))
    def test_a_unit_on_an_old_secret_revision_reads_the_final_credentials(self, ctx, name):
        self.check_database_secret_revision(ctx, name)

    def test_the_dashboard_shows_requests_by_outcome_latency_backend_errors_and_gunicorn(
        self, ctx
    ):
        dashboard = self.shipped_dashboard(ctx)

        expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
        assert 'django_response_code{status="503"' in expressions  # DNS backend unavailable
        for metric in ("django_response_code", "django_request_duration", "django_requests"):
            assert metric in expressions

    def test_prometheus_is_told_to_alert_on_target_down_5xx_and_backend_errors(self, ctx):
        alerts = self.published_alerts(ctx)

        assert {"TargetDown", "HighServerErrorRatio", "DnsBackendUnavailable"} <= alerts

    def test_the_dashboard_shows_the_providers_own_metrics_by_their_real_names(self, ctx):
        dashboard = self.shipped_dashboard(ctx)
        source = (PROVIDER.workload_source / "api" / "metrics.py").read_text()

        expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
        used = {
            re.sub(r"_(total|bucket)$", "", m)
            for m in re.findall(r"lego_provider_\w+", expressions)
        }
        assert used == {
            "lego_provider_record_changes",
            "lego_provider_backend_seconds",
            "lego_provider_push_retries",
            "lego_provider_push_conflicts",
            "lego_provider_authentication_failures",
            "lego_provider_records_published",
            "lego_provider_records_oldest_age_seconds",
        }
        for name in used:  # the service's metrics module defines each one
            assert f'"{name}"' in source, name
