"""Latency of legitimate requests while slow or idle anonymous clients hold connections.

For each service, run as its rock runs it (gunicorn with the flags of its ``webserver.json``,
PostgreSQL and a local git remote for the provider, Redis for the router), attach N
connections that trickle headers or a body a byte at a time or stay idle (reopened whenever
the server closes one, see ``scripts/slow_clients.py``), then send legitimate requests one at
a time, each on a new connection with a 5 s client timeout: lego's present + cleanup with
basic auth, or a signed ``queued`` webhook. Prints, per kind of slow client, the answered
count, p50 and p99 latency and how many were answered within 1 s (the target).

    .venv/bin/python bench/slow_clients_bench.py [--slow 50] [--requests 40]
        [--service provider|router|both]
        [--provider-webserver PATH] [--router-webserver PATH]   # e.g. to compare gthread
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PROVIDER = ROOT / "httprequest-lego-provider"
ROUTER = ROOT / "github-runner-webhook-router"
# The provider's tests are the package ``tests`` under its folder; the router's test helpers
# are top-level modules of its tests folder.
sys.path[:0] = [
    str(ROOT / "scripts"),
    str(PROVIDER),
    str(PROVIDER / "httprequest_lego_provider"),
    str(ROUTER),
    str(ROUTER / "tests"),
]

from helpers import REDIS_URL, job_body  # noqa: E402
from slow_clients import MODES, Mode, SlowClients  # noqa: E402
from test_slow_clients import SLOW_HEADERS, serving  # noqa: E402
from tests.dns_backends.contract import token  # noqa: E402
from tests.e2e.gitzone import make_zone_repository  # noqa: E402
from tests.processes import LOOPBACK, running  # noqa: E402
from tests.provider_server import ProviderServer, postgresql_database  # noqa: E402
from webserver_args import gunicorn_args  # noqa: E402

CLIENT_TIMEOUT_SECONDS = 5.0  # as the tests (the router's deliver() uses theirs)
TARGET_SECONDS = 1.0
PROVIDER_TARGETS: dict[Mode, str] = {
    "headers": "/present",
    "body": "/api/v1/auth/token/",
    "idle": "/",
}

# One legitimate request: returns whether it was answered with the expected status.
Call = Callable[[int], bool]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(label: str, call: Call, count: int) -> None:
    """Run ``count`` calls one after another; print answered, p50, p99 and within target."""
    latencies: list[float] = []
    failed = 0
    for i in range(count):
        start = time.perf_counter()
        try:
            ok = call(i)
        except requests.RequestException:
            ok = False
        elapsed = time.perf_counter() - start
        if ok:
            latencies.append(elapsed)
        else:
            failed += 1
    if latencies:
        within = sum(1 for s in latencies if s <= TARGET_SECONDS)
        print(
            f"  {label:24s} answered {len(latencies):3d}/{count}"
            f"  p50 {percentile(latencies, 0.5) * 1000:7.1f} ms"
            f"  p99 {percentile(latencies, 0.99) * 1000:7.1f} ms"
            f"  within {TARGET_SECONDS:.0f} s: {within}/{count}"
        )
    else:
        print(f"  {label:24s} answered   0/{count} ({failed} timed out or failed)")


def attacked(
    port: int, slow: int, targets: dict[Mode, str], headers: dict[str, str] | None = None
) -> Iterator[tuple[str, AbstractContextManager[object]]]:
    """Yield (label, context) for no slow clients, then each kind of slow client."""
    yield "no slow clients", _nothing()
    for mode in MODES:
        yield (
            f"{slow} slow ({mode})",
            SlowClients(LOOPBACK, port, slow, mode, path=targets[mode], headers=headers),
        )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def bench_provider(base: Path, webserver: Path, slow: int, count: int) -> None:
    remote = make_zone_repository(base / "dns.git", {"example.com": "; example.com\n"})
    backend_env = {
        "DJANGO_DNS_BACKEND": "git",
        "DJANGO_GIT_REPO": f"file://{remote}@main",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    with postgresql_database() as database:
        server = ProviderServer(
            base / "host", backend_env, database_url=database, webserver=webserver
        )
        with running(server):
            auth = ("bench", server.create_user("bench", subdomains="example.com"))
            print(f"provider: gunicorn {' '.join(gunicorn_args(webserver))}")
            print("  (one call = present then cleanup, each on a new connection)")
            for case, (label, context) in enumerate(attacked(server.port, slow, PROVIDER_TARGETS)):

                def call(i: int, case: int = case) -> bool:
                    name = f"_acme-challenge.case{case}n{i}.example.com."
                    body = {"fqdn": name, "value": token(f"{case}.{i}")}
                    for path in ("/present", "/cleanup"):
                        answer = requests.post(
                            server.url + path,
                            json=body,
                            auth=auth,
                            headers={"Connection": "close"},
                            timeout=CLIENT_TIMEOUT_SECONDS,
                        )
                        if answer.status_code != 200:
                            return False
                    return True

                with context:
                    time.sleep(1)  # let the workers take the slow connections
                    measure(label, call, count)


def bench_router(base: Path, webserver: Path, slow: int, count: int) -> None:
    with serving(base, REDIS_URL, webserver) as router:
        print(f"router (Redis): gunicorn {' '.join(gunicorn_args(webserver))}")
        targets: dict[Mode, str] = dict.fromkeys(MODES, "/webhook")
        for label, context in attacked(router.port, slow, targets, SLOW_HEADERS):

            def call(i: int) -> bool:
                url = f"https://api.github.com/repos/o/r/actions/jobs/{i}-{uuid.uuid4()}"
                return router.deliver(job_body(["x64"], url=url), str(uuid.uuid4())) == 200

            with context:
                time.sleep(1)
                measure(label, call, count)
        router.drain()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slow", type=int, default=50, help="slow connections held open")
    parser.add_argument("--requests", type=int, default=40, help="legitimate requests per case")
    parser.add_argument("--service", choices=("provider", "router", "both"), default="both")
    parser.add_argument("--provider-webserver", type=Path, default=PROVIDER / "webserver.json")
    parser.add_argument("--router-webserver", type=Path, default=ROUTER / "webserver.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.service in ("provider", "both"):
            bench_provider(
                Path(tmp) / "provider", args.provider_webserver, args.slow, args.requests
            )
        if args.service in ("router", "both"):
            (Path(tmp) / "router").mkdir()
            bench_router(Path(tmp) / "router", args.router_webserver, args.slow, args.requests)


if __name__ == "__main__":
    main()
