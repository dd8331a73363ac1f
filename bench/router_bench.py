"""Benchmark the webhook router under gunicorn with wrk: throughput, latency, correctness.

Run from the repository root with the virtualenv active and Redis/RabbitMQ up:

    python bench/router_bench.py [--duration 10] [--workers 2] [--classes rock,gthread]

For each broker and gunicorn worker class it starts the router, drives signed `queued`
webhooks at 16 and 64 connections, checks the queue holds exactly one message per 200 (and that
no request was a duplicate), measures the trivial /health/live endpoint of the same server as
the framework's ceiling, and reports the workers' resident memory.

The router deduplicates on the job's identity in the signed body, so every request is another
job: bodies with distinct job ids are signed beforehand into one file per wrk thread, which
its Lua script reads a record (signature line, body line) per request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUTER = ROOT / "github-runner-webhook-router"
sys.path.insert(0, str(ROUTER))
sys.path.insert(0, str(ROOT / "scripts"))

from webhook_router.broker import connection, flavour_queue  # noqa: E402
from webhook_router.signature import sign  # noqa: E402
from webserver_args import gunicorn_args  # noqa: E402

SECRET = "bench-secret"
BROKERS = {
    "redis": "redis://127.0.0.1:6379/2",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}
WRK_THREADS = 2
# Pre-signed jobs per wrk thread per second of a run: well above what two cores serve, so a
# run never reuses a job (a reused one would be answered as a duplicate, and counted).
JOBS_PER_THREAD_SECOND = 3000
# Each wrk thread reads its own file of records: a signature line, then a body line. RUN is
# unique per wrk run; a unique X-GitHub-Delivery per request as GitHub sends.
LUA = """
counter = 0
threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("index", threads)
end
function init(args)
  prefix = "RUN-" .. index
  records = io.open("BODIES-" .. index, "rb")
end
function request()
  local signature = records:read("*l")
  if signature == nil then
    records:seek("set", 0)
    signature = records:read("*l")
  end
  local body = records:read("*l")
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. "-" .. counter
  wrk.headers["X-Hub-Signature-256"] = signature
  return wrk.format("POST", "/webhook", nil, body)
end
"""


@dataclass
class Run:
    """One wrk run's figures."""

    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    failures: int


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_ID_MARK = 999_999_999_999


def body_template() -> tuple[bytes, bytes]:
    """The recorded queued payload routed to the bench flavour (x64), split at its job id."""
    document = json.loads((ROUTER / "tests/fixtures/workflow_job.queued.json").read_bytes())
    document["workflow_job"]["labels"] = ["self-hosted", "linux", "x64"]
    document["workflow_job"]["id"] = _ID_MARK
    head, tail = json.dumps(document).encode().split(str(_ID_MARK).encode())
    return head, tail


def write_jobs(directory: Path, first_id: int, per_thread: int) -> int:
    """Sign `per_thread` distinct jobs for each wrk thread into BODIES-<n>; the next free id."""
    head, tail = body_template()
    job_id = first_id
    for thread in range(1, WRK_THREADS + 1):
        with (directory / f"BODIES-{thread}").open("wb") as records:
            for _ in range(per_thread):
                payload = head + str(job_id).encode() + tail
                records.write(sign(SECRET.encode(), payload).encode() + b"\n" + payload + b"\n")
                job_id += 1
    return job_id


def wrk(url: str, connections: int, duration: int, script: Path | None, headers: list[str]) -> Run:
    """Run wrk and parse its summary."""
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    requests = int(_find(r"(\d+) requests in", output))
    rate = float(_find(r"Requests/sec:\s+([\d.]+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failures = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(value) for value in errors.groups()) if errors else 0
    )
    return Run(requests, rate, _percentile(output, "50"), _percentile(output, "99"), failures)


def _find(pattern: str, output: str) -> str:
    match = re.search(pattern, output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return match.group(1)


def _percentile(output: str, which: str) -> float:
    match = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def rss_mb(master: int) -> list[float]:
    """Resident memory of the gunicorn workers (children of the master), in MB."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    sizes = []
    for child in children:
        status = Path(f"/proc/{child}/status").read_text()
        kilobytes = int(_find(r"VmRSS:\s+(\d+) kB", status))
        sizes.append(kilobytes / 1024)
    return sizes


def queue_size(broker: str, state_dir: Path, flavour: str) -> int:
    """Messages waiting on the flavour's queue, which is then emptied (not deleted).

    The queue must stay while the server runs: the router declares it once per connection.
    """
    with connection(broker, state_dir, 5.0) as conn:
        bound = flavour_queue(flavour)(conn.default_channel)
        try:
            _, size, _ = bound.queue_declare(passive=True)
        except conn.channel_errors:  # kombu's Redis transport drops an empty queue's key
            return 0
        bound.purge()
        return int(size)


def drop_queue(broker: str, state_dir: Path, flavour: str) -> None:
    """Delete the bench queue (and its exchange on RabbitMQ)."""
    with connection(broker, state_dir, 5.0) as conn:
        bound = flavour_queue(flavour)(conn.default_channel)
        bound.delete()
        if broker.startswith("amqp"):
            bound.exchange.delete()


def answered(metrics_url: str, outcome: str = "published") -> float:
    """The server's own count of answers with this outcome, summed over its workers."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("webhook_router_webhooks_total{") and f'outcome="{outcome}"' in line
    )


def bench(
    broker_name: str, worker_class: str, workers: int, threads: int, duration: int
) -> dict[str, Any]:
    """Start gunicorn with one configuration and measure it."""
    broker = BROKERS[broker_name]
    flavour = f"bench-{uuid.uuid4().hex[:8]}"
    state_dir = Path(tempfile.mkdtemp(prefix="router-bench-"))
    port, metrics_port = free_port(), free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update(
        {
            "FLASK_FLAVOURS": f"- {flavour}: [x64]",
            "FLASK_WEBHOOK_SECRET": SECRET,
            "MONGODB_DB_CONNECT_STRING": broker,
            "FLASK_STATE_DIR": str(state_dir),
            "FLASK_METRICS_PORT": str(metrics_port),
            "FLASK_METRICS_ADDRESS": "127.0.0.1",
            "FLASK_LOG_LEVEL": "WARNING",
        }
    )
    command = [sys.executable, "-m", "gunicorn", "app:app", "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "--no-control-socket"]
    if worker_class == "rock":  # the server model the rock and the charm run
        command += gunicorn_args(ROUTER / "webserver.json")
    else:
        command += ["--workers", str(workers), "--worker-class", worker_class]
        if worker_class == "gthread":
            command += ["--threads", str(threads)]
    server = subprocess.Popen(command, cwd=ROUTER, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base)
        next_id = int(time.time() * 1000) * 1000  # distinct from every earlier bench run

        def lua(seconds: int) -> Path:
            nonlocal next_id
            folder = state_dir / uuid.uuid4().hex
            folder.mkdir()
            next_id = write_jobs(folder, next_id, seconds * JOBS_PER_THREAD_SECOND)
            script = folder / "run.lua"
            script.write_text(
                LUA.replace("RUN", uuid.uuid4().hex).replace("BODIES", str(folder / "BODIES"))
            )
            return script

        headers = ["Content-Type: application/json", "X-GitHub-Event: workflow_job"]
        # Warm up: connections, queue declaration, first imports.
        wrk(f"{base}/webhook", 16, 2, lua(2), headers)
        time.sleep(0.5)  # let requests wrk abandoned finish before emptying the queue
        queue_size(broker, state_dir, flavour)
        result: dict[str, Any] = {"broker": broker_name, "class": worker_class}
        for connections in (16, 64):
            script = lua(duration)
            before = answered(metrics_url)
            duplicates_before = answered(metrics_url, "duplicate")
            run = wrk(f"{base}/webhook", connections, duration, script, headers)
            time.sleep(0.5)  # requests wrk abandoned at the end still complete server-side
            ok = round(answered(metrics_url) - before)
            duplicates = round(answered(metrics_url, "duplicate") - duplicates_before)
            queued = queue_size(broker, state_dir, flavour)
            shutil.rmtree(script.parent)
            ceiling = wrk(f"{base}/health/live", connections, duration, None, [])
            result[f"c{connections}"] = {
                "webhooks_per_s": round(run.rate),
                "p50_ms": round(run.p50_ms, 2),
                "p99_ms": round(run.p99_ms, 2),
                "ok": ok,
                "duplicates": duplicates,
                "wrk_requests": run.requests,
                "failures": run.failures,
                "queued": queued,
                "ceiling_per_s": round(ceiling.rate),
                "ratio": round(run.rate / ceiling.rate, 2),
            }
        result["rss_mb"] = [round(size, 1) for size in rss_mb(server.pid)]
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)
        drop_queue(broker, state_dir, flavour)
        shutil.rmtree(state_dir, ignore_errors=True)


def _wait(base: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health/live", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


def main() -> None:
    """Parse options, run every configuration, print a table and the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--classes", default="rock", help="rock (webserver.json), or gunicorn worker classes"
    )
    parser.add_argument("--brokers", default="redis,rabbitmq")
    args = parser.parse_args()
    results = []
    for broker in args.brokers.split(","):
        for worker_class in args.classes.split(","):
            result = bench(broker, worker_class, args.workers, args.threads, args.duration)
            result["workers"] = args.workers
            results.append(result)
            for connections in ("c16", "c64"):
                figures = result[connections]
                print(
                    f"{broker:9} {worker_class:8} w{args.workers} {connections:4} "
                    f"{figures['webhooks_per_s']:6}/s p50 {figures['p50_ms']:6.2f} ms "
                    f"p99 {figures['p99_ms']:6.2f} ms ceiling {figures['ceiling_per_s']:6}/s "
                    f"ratio {figures['ratio']:.2f} ok {figures['ok']} queued {figures['queued']} "
                    f"failures {figures['failures']} duplicates {figures['duplicates']}",
                    flush=True,
                )
            print(f"{broker:9} {worker_class:8} rss per worker (MB): {result['rss_mb']}")
            for connections in ("c16", "c64"):
                figures = result[connections]
                if figures["ok"] != figures["queued"]:
                    raise SystemExit("every 200 must be exactly one queued message")
                if figures["duplicates"]:
                    raise SystemExit("jobs were reused: raise JOBS_PER_THREAD_SECOND")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
