"""The router's relations against the data the real charm libraries write (shared/interop).

Recorded data, not a live peer: MongoDB, Traefik, Prometheus, Loki and Grafana cannot run here.
"""

from __future__ import annotations

import pytest
from testing_support.interop_contract import (
    InteropContract,
    provider_fixtures,
    with_user_secret,
)

from tests.states import ROUTER

ANSWERS = provider_fixtures("mongodb_client")


class TestRouterInterop(InteropContract):
    subject = ROUTER

    @pytest.mark.parametrize("name", ANSWERS)
    def test_the_mongodb_answer_reaches_the_workload(self, ctx, name):
        self.check_database_answer(ctx, name)

    @pytest.mark.parametrize("name", with_user_secret(ANSWERS))
    def test_a_unit_on_an_old_secret_revision_reads_the_final_credentials(self, ctx, name):
        self.check_database_secret_revision(ctx, name)

    def test_the_dashboard_shows_webhooks_by_outcome_latency_broker_errors_waits_and_gunicorn(
        self, ctx
    ):
        dashboard = self.shipped_dashboard(ctx)

        expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
        for metric in (
            "webhook_router_webhooks_total",
            "webhook_router_publish_seconds_bucket",
            "webhook_router_broker_errors_total",
            "webhook_router_jobs_routed_total",
            "webhook_router_job_wait_seconds_bucket",
            "webhook_router_job_run_seconds_bucket",
            "flask_response_code",
            "flask_request_duration",
            "flask_requests",
        ):
            assert metric in expressions

    def test_prometheus_is_told_to_alert_on_target_down_5xx_and_broker_errors(self, ctx):
        assert {"TargetDown", "HighServerErrorRatio", "BrokerErrors"} <= self.published_alerts(ctx)
