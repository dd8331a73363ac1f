"""Metrics are summed over gunicorn's workers and served on their own port (real gunicorn).

A real server (the rock's server model from webserver.json, PostgreSQL, the in-memory backend)
takes presents until both workers have counted some (each worker writes its own file); the
metrics port must then report the total, whichever worker serves it, and the published records
read from the database.
"""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import LOOPBACK, free_port, running
from tests.provider_server import ProviderServer, postgresql_database

BATCH = 16
MAX_PRESENTS = 320


def value(i: int) -> str:
    """A distinct, valid TXT value (43 characters of base64url) per request."""
    return base64.urlsafe_b64encode(hashlib.sha256(str(i).encode()).digest()).decode()[:43]


def counting_workers(metrics_root: Path) -> set[str]:
    """The workers that have written counter values (prometheus_client's counter_<pid>.db)."""
    return {path.stem.split("_")[-1] for path in metrics_root.glob("*/counter_*.db")}


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(f"http://{LOOPBACK}:{port}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_presents_on_both_workers_are_summed_on_the_metrics_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    env = {
        "DJANGO_DNS_BACKEND": "memory",
        "DJANGO_MEMORY_ZONES": "example.com",
        "DJANGO_METRICS_PORT": str(metrics_port),
        "DJANGO_METRICS_ADDRESS": LOOPBACK,
    }
    with postgresql_database() as database:
        server = ProviderServer(tmp_path / "unit", env, database_url=database)
        with running(server):
            auth = ("machine", server.create_user("machine", domains="www.example.com"))

            def present(i: int) -> int:
                body = {"fqdn": "_acme-challenge.www.example.com.", "value": value(i)}
                answer = requests.post(server.url + "/present", json=body, auth=auth, timeout=60)
                return answer.status_code

            sent = 0
            root = tmp_path / "unit" / "data" / "metrics"
            with ThreadPoolExecutor(8) as pool:
                while len(counting_workers(root)) < 2 and sent < MAX_PRESENTS:
                    statuses = list(pool.map(present, range(sent, sent + BATCH)))
                    assert statuses == [200] * BATCH, server.log()
                    sent += BATCH
            assert len(counting_workers(root)) == 2, "one worker served every request"

            samples = scrape(metrics_port)
            ok = frozenset(
                {
                    "operation": "present",
                    "via": "httpreq",
                    "backend": "memory",
                    "outcome": "ok",
                    "reason": "",
                }.items()
            )
            assert samples[("lego_provider_record_changes_total", ok)] == sent
            timed = frozenset({"operation": "present", "backend": "memory"}.items())
            assert samples[("lego_provider_backend_seconds_count", timed)] == sent
            published = frozenset({"via": "httpreq"}.items())
            assert samples[("lego_provider_records_published", published)] == sent
