"""Benchmark the whole pipeline: webhooks -> router (gunicorn) -> broker -> dispatcher -> spawner.

Run from the repository root with the virtualenv active and Redis/RabbitMQ up:

    python bench/pipeline_bench.py [--rate 100] [--duration 60] [--broker rabbitmq]

Signed `queued` webhooks, each for a new job, are sent at a fixed rate (open loop: a late
answer does not delay the next send) to the router under gunicorn; one dispatcher process
consumes the flavour's queue, asks a local fake of GitHub's API (answering at once: `queued`
before the spawn, `in_progress` after) and runs a bash spawner that appends the job id and
`$EPOCHREALTIME` to a file. Prints the webhook-to-spawn latency (p50, p99: from just before
the webhook is sent to the spawner's first instruction), throughput, and the accounting:
published = spawned + rejected + still queued, and jobs spawned more than once.

The fast figures use 32 consumers and a 0.05 s pickup interval. `--default-config` runs the
dispatcher with its defaults instead (16 consumers, a 10 s pickup interval: the fake reports
the job taken at the first poll, so each job holds a consumer 10 s) and prints the capacity
the README's formula predicts next to the measured spawn rate; send under that rate (say
`--default-config --rate 3 --duration 20 --drain-seconds 120`) or the queue grows.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUTER = ROOT / "github-runner-webhook-router"
sys.path[:0] = [str(ROUTER), str(ROUTER / "tests")]

from dispatcher.fake_github import FakeGitHub, running  # noqa: E402
from webhook_router.broker import connection, flavour_queue  # noqa: E402
from webhook_router.signature import sign  # noqa: E402

SECRET = "bench-secret"
TOKEN = "ghp_bench"
BROKERS = {
    "redis": "redis://127.0.0.1:6379/2",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
SPAWNER = """#!/bin/bash
echo "$DISPATCHER_JOB_ID $EPOCHREALTIME" >> "$SPAWN_LOG"
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def payload(job_id: int, api_url: str) -> bytes:
    """The recorded queued payload for a new job routed to the bench flavour (x64)."""
    document = json.loads((ROUTER / "tests/fixtures/workflow_job.queued.json").read_bytes())
    job = document["workflow_job"]
    job["id"] = job_id
    job["labels"] = ["self-hosted", "linux", "x64"]
    # The job's URL names the payload's repository, as GitHub's does (the dispatcher checks).
    repository = document["repository"]["full_name"]
    job["url"] = f"{api_url}/repos/{repository}/actions/jobs/{job_id}"
    return json.dumps(document).encode()


def wait_http(url: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - 127.0.0.1 only
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def metric_sum(url: str, name: str, match: str = "") -> float:
    """The sum of a metric's samples whose line contains `match`."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} ")) and match in line
    )


def queue_size(broker: str, state_dir: Path, flavour: str) -> int:
    with connection(broker, state_dir, 5.0) as conn:
        bound = flavour_queue(flavour)(conn.default_channel)
        try:
            _, size, _ = bound.queue_declare(passive=True)
        except conn.channel_errors:  # kombu's Redis transport drops an empty queue's key
            return 0
        return int(size)


def drop_queue(broker: str, state_dir: Path, flavour: str) -> None:
    with connection(broker, state_dir, 5.0) as conn:
        bound = flavour_queue(flavour)(conn.default_channel)
        bound.delete()
        if broker.startswith("amqp"):
            bound.exchange.delete()


class Sender:
    """Open-loop sender: one keep-alive connection per thread, send times by job id."""

    def __init__(self, port: int, api_url: str) -> None:
        self._port = port
        self._api_url = api_url
        self._local = threading.local()
        self.sent: dict[int, float] = {}
        self.statuses: dict[int, int] = {}
        self.resent = 0

    def post(self, job_id: int) -> None:
        body = payload(job_id, self._api_url)
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
        }
        self.sent[job_id] = time.time()
        # A kept-alive connection the server closes (its keep-alive time ran out) just as a
        # request goes out fails before any answer: resend once on a new connection, as an
        # HTTP client does; the same delivery twice is safe (the router deduplicates the job).
        for attempt in range(2):
            client = getattr(self._local, "client", None)
            if client is None:
                client = http.client.HTTPConnection("127.0.0.1", self._port, timeout=15)
                self._local.client = client
            try:
                client.request("POST", "/webhook", body=body, headers=headers)
                response = client.getresponse()
                response.read()
                self.statuses[job_id] = response.status
                return
            except (OSError, http.client.HTTPException):
                self._local.client = None
                client.close()
                self.statuses[job_id] = 0
                self.resent += attempt == 0


def bench(args: argparse.Namespace) -> dict[str, Any]:
    broker = BROKERS[args.broker]
    flavour = f"pipeline-{uuid.uuid4().hex[:8]}"
    state_dir = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    spawn_log = state_dir / "spawns.log"
    spawner = state_dir / "spawn.sh"
    spawner.write_text(SPAWNER)
    spawner.chmod(0o755)
    port, router_metrics = free_port(), free_port()
    health = free_port()
    seen: set[int] = set()
    seen_lock = threading.Lock()

    def taken(job_id: int) -> bool:
        """`queued` at the dispatcher's first look, `in_progress` from then on."""
        with seen_lock:
            if job_id in seen:
                return True
            seen.add(job_id)
            return False

    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "MONGO", "DISPATCHER_", "GITHUB_"))
    }
    base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    github = FakeGitHub(token=TOKEN)
    github.taken = taken
    processes: list[subprocess.Popen[bytes]] = []
    with running(github):
        try:
            router_env = {
                **base_env,
                "FLASK_FLAVOURS": f"- {flavour}: [x64]",
                "FLASK_WEBHOOK_SECRET": SECRET,
                "MONGODB_DB_CONNECT_STRING": broker,
                "FLASK_STATE_DIR": str(state_dir / "router"),
                "FLASK_METRICS_PORT": str(router_metrics),
                "FLASK_METRICS_ADDRESS": "127.0.0.1",
                "FLASK_LOG_LEVEL": "WARNING",
            }
            command = [
                sys.executable,
                "-m",
                "gunicorn",
                "app:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--worker-class",
                args.worker_class,
                "--log-level",
                "warning",
            ]
            if args.worker_class == "gthread":
                command += ["--threads", str(args.threads)]
            processes.append(subprocess.Popen(command, cwd=ROUTER, env=router_env))
            dispatcher_env = {
                **base_env,
                "DISPATCHER_FLAVOURS": flavour,
                "DISPATCHER_BROKER_URL": broker,
                "DISPATCHER_SPAWN_COMMAND": str(spawner),
                "DISPATCHER_SPAWN_PASS_ENV": "SPAWN_LOG",
                "SPAWN_LOG": str(spawn_log),
                "DISPATCHER_GITHUB_API_URL": github.url,
                "GITHUB_TOKEN": TOKEN,
                "DISPATCHER_HEALTH_PORT": str(health),
                "DISPATCHER_LOG_LEVEL": "WARNING",
                "DISPATCHER_STATE_DIR": str(state_dir / "dispatcher"),
            }
            if not args.default_config:
                dispatcher_env.update(
                    {
                        "DISPATCHER_CONSUMERS": str(args.consumers),
                        "DISPATCHER_PICKUP_INTERVAL_SECONDS": str(args.pickup_interval),
                        "DISPATCHER_PICKUP_POLLS": "5",
                        "DISPATCHER_BACKOFF_BASE_SECONDS": "0.1",
                        "DISPATCHER_BACKOFF_MAX_SECONDS": "1",
                    }
                )
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "runner_dispatcher"], cwd=ROUTER, env=dispatcher_env
                )
            )
            wait_http(f"http://127.0.0.1:{router_metrics}/metrics", "the router")
            wait_http(f"http://127.0.0.1:{health}/health", "the dispatcher")
            return _measure(args, port, github.url, spawn_log, broker, state_dir, flavour, health)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
            drop_queue(broker, state_dir / "router", flavour)


def _measure(
    args: argparse.Namespace,
    port: int,
    api_url: str,
    spawn_log: Path,
    broker: str,
    state_dir: Path,
    flavour: str,
    health: int,
) -> dict[str, Any]:
    sender = Sender(port, api_url)
    total = int(args.rate * args.duration)
    first_id = int(time.time() * 1000) * 1000
    started = time.monotonic()
    with ThreadPoolExecutor(args.senders) as pool:
        for index in range(total):
            target = started + index / args.rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(sender.post, first_id + index)
    send_seconds = time.monotonic() - started
    published = sum(1 for status in sender.statuses.values() if status == 200)
    metrics = f"http://127.0.0.1:{health}/metrics"

    def spawns() -> list[tuple[int, float]]:
        if not spawn_log.exists():
            return []
        rows = [line.split() for line in spawn_log.read_text().splitlines() if line.strip()]
        return [(int(job), float(at)) for job, at in rows]

    # Let the pipeline drain: until every published job has an outcome, or the drain time.
    deadline = time.monotonic() + args.drain_seconds
    while time.monotonic() < deadline:
        done = len({job for job, _ in spawns()}) + metric_sum(
            metrics, "dispatcher_messages_rejected_total"
        )
        # Spawned jobs stay in flight until their pickup is seen: wait for that too, so
        # none is counted both spawned and in flight.
        if done >= published and metric_sum(metrics, "dispatcher_jobs_in_flight") == 0:
            break
        time.sleep(0.2)
    rows = spawns()
    first_spawn: dict[int, float] = {}
    for job, at in rows:
        first_spawn.setdefault(job, at)
    latencies = sorted(
        (at - sender.sent[job]) * 1000 for job, at in first_spawn.items() if job in sender.sent
    )
    rejected = metric_sum(metrics, "dispatcher_messages_rejected_total")
    queued = queue_size(broker, state_dir / "router", flavour)
    in_flight = metric_sum(metrics, "dispatcher_jobs_in_flight")
    spawned = len(first_spawn)
    duplicates = len(rows) - spawned
    span = (max(at for _, at in rows) - min(sender.sent.values())) if rows else 0.0
    consumers, interval = (
        (16, 10.0) if args.default_config else (args.consumers, args.pickup_interval)
    )
    return {
        "broker": args.broker,
        "configuration": "defaults" if args.default_config else "fast",
        # The README's formula: consumers / (spawn + time to pickup, rounded up to a poll).
        "predicted_capacity_per_s": round(consumers / interval, 1),
        "rate_per_s": args.rate,
        "duration_s": args.duration,
        "sent": total,
        "send_seconds": round(send_seconds, 2),
        "published": published,
        "non_200": total - published,
        "statuses": {str(code): n for code, n in Counter(sender.statuses.values()).items()},
        "resent_after_a_closed_connection": sender.resent,
        "spawned": spawned,
        "rejected": int(rejected),
        "still_queued": queued,
        "in_flight": int(in_flight),
        "lost": published - spawned - int(rejected) - queued - int(in_flight),
        "spawned_twice": duplicates,
        "spawns_per_s": round(spawned / span, 1) if span else 0.0,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2)
        if len(latencies) >= 100
        else (round(latencies[-1], 2) if latencies else None),
        "max_ms": round(latencies[-1], 2) if latencies else None,
    }


def main() -> None:
    """Parse options, run once, print the figures and check the accounting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--broker", choices=sorted(BROKERS), default="rabbitmq")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=32, help="dispatcher consumers")
    parser.add_argument("--pickup-interval", type=float, default=0.05)
    parser.add_argument("--senders", type=int, default=16, help="sending threads")
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument(
        "--default-config",
        action="store_true",
        help="run the dispatcher with its default consumers, pickup interval and backoff",
    )
    args = parser.parse_args()
    result = bench(args)
    print(
        f"{result['broker']} ({result['configuration']} configuration, predicted capacity "
        f"{result['predicted_capacity_per_s']}/s) "
        f"{result['rate_per_s']:g}/s x {result['duration_s']:g} s: "
        f"webhook-to-spawn p50 {result['p50_ms']} ms p99 {result['p99_ms']} ms "
        f"(max {result['max_ms']} ms), {result['spawns_per_s']} spawns/s; published "
        f"{result['published']} = spawned {result['spawned']} + rejected {result['rejected']} "
        f"+ still queued {result['still_queued']} + in flight {result['in_flight']} "
        f"(lost {result['lost']}); spawned twice {result['spawned_twice']}",
        flush=True,
    )
    print(json.dumps(result, indent=1))
    if result["lost"] or result["spawned_twice"]:
        raise SystemExit("jobs were lost or spawned twice")


if __name__ == "__main__":
    main()
