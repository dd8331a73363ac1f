"""Real processes for the pipeline tests: the router under gunicorn, dispatchers, a spawner."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
from helpers import SECRET, fixture_bytes, free_port
from kombu.connection import Connection
from webhook_router.signature import sign

ROOT = Path(__file__).parent.parent.parent
REPOSITORY = "Codertocat/Hello-World"  # the recorded payloads' repository
# The spawner: a POSIX shell script (quick to start), told what to do by marker files.
# hang-<job>: write its pid, sleep (a spawn in progress when the dispatcher is killed);
# fail-<job>: record the failure and exit 1; otherwise record the spawn and exit 0.
SPAWN_SCRIPT = """#!/bin/sh
cat > /dev/null
dir="$SPAWN_DIR"
job="$DISPATCHER_JOB_ID"
if mv "$dir/hang-$job" "$dir/hung-$job" 2>/dev/null; then
  echo $$ > "$dir/hanging-$job"
  sleep 60
  exit 1
fi
if [ -e "$dir/fail-$job" ]; then
  echo "fail $job $DISPATCHER_ATTEMPT $DISPATCHER_FLAVOUR" >> "$dir/spawns.log"
  exit 1
fi
echo "ok $job $DISPATCHER_ATTEMPT $DISPATCHER_FLAVOUR" >> "$dir/spawns.log"
"""


@dataclass
class SpawnLog:
    """The spawner's record of its runs, and the marker files that steer it."""

    directory: Path

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.script = self.directory / "spawn.sh"
        self.script.write_text(SPAWN_SCRIPT)
        self.script.chmod(0o755)

    def lines(self) -> list[tuple[str, int, int]]:
        """(outcome, job id, attempt) of each run so far."""
        path = self.directory / "spawns.log"
        if not path.exists():
            return []
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        return [(row[0], int(row[1]), int(row[2])) for row in rows]

    def spawned(self, job_id: int) -> int:
        """Successful spawns of the job."""
        return sum(1 for outcome, job, _ in self.lines() if outcome == "ok" and job == job_id)

    def failures(self, job_id: int) -> list[int]:
        """The attempt numbers of the job's failed spawns."""
        return [
            attempt
            for outcome, job, attempt in self.lines()
            if outcome == "fail" and job == job_id
        ]

    def mark(self, kind: str, job_id: int) -> None:
        """Make the next spawn of the job hang (`hang`) or every spawn fail (`fail`)."""
        (self.directory / f"{kind}-{job_id}").touch()

    def hanging_pid(self, job_id: int) -> int | None:
        path = self.directory / f"hanging-{job_id}"
        text = path.read_text().strip() if path.exists() else ""
        return int(text) if text else None


def job_payload(job_id: int, labels: list[str], action: str, api_url: str) -> bytes:
    """A recorded GitHub payload for job `job_id`, its URL on the fake API."""
    fixture = f"workflow_job.{action}.json"
    document = json.loads(fixture_bytes(fixture))
    document["action"] = action
    job = document["workflow_job"]
    job["id"] = job_id
    job["labels"] = labels
    job["url"] = f"{api_url}/repos/{REPOSITORY}/actions/jobs/{job_id}"
    return json.dumps(document).encode()


def child_env(**values: str) -> dict[str, str]:
    """This environment without any service's variables, plus `values`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "MONGO", "DISPATCHER_", "GITHUB_"))
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(values)
    return env


def wait_for_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            pass
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{what} did not come up"
        time.sleep(0.05)


@dataclass
class Router:
    """The router under gunicorn (2 sync workers), as tests/test_gunicorn.py starts it."""

    flavours_yaml: str
    broker: str | None
    state_dir: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> Router:
        env = child_env(
            **self.extra_env,
            FLASK_FLAVOURS=self.flavours_yaml,
            FLASK_WEBHOOK_SECRET=SECRET,
            FLASK_STATE_DIR=str(self.state_dir),
            FLASK_METRICS_PORT=str(self.metrics_port),
            FLASK_METRICS_ADDRESS="127.0.0.1",
            FLASK_PUBLISH_TIMEOUT_SECONDS="2",
            FLASK_LOG_LEVEL="WARNING",
        )
        if self.broker is not None:
            env["MONGODB_DB_CONNECT_STRING"] = self.broker
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "app:app",
            ],
            cwd=ROOT,
            env=env,
        )
        wait_for_http(f"http://127.0.0.1:{self.metrics_port}/metrics", self.process, "gunicorn")
        return self

    def post(self, body: bytes, delivery: str | None = None, event: str = "workflow_job") -> int:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
            "User-Agent": "GitHub-Hookshot/e2e",
        }
        return requests.post(
            f"http://127.0.0.1:{self.port}/webhook", data=body, headers=headers, timeout=15
        ).status_code

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@dataclass
class DispatcherProcess:
    """`python -m runner_dispatcher` with the command spawner running the test's script."""

    env: dict[str, str]
    log_path: Path
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> DispatcherProcess:
        env = child_env(**self.env, DISPATCHER_HEALTH_PORT=str(self.health_port))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runner_dispatcher"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_http(self.health_url, self.process, "the dispatcher")
        deadline = time.monotonic() + 60
        while requests.get(self.health_url, timeout=5).status_code != 200:
            assert self.process.poll() is None, "the dispatcher exited"
            assert time.monotonic() < deadline, "the dispatcher never connected"
            time.sleep(0.05)
        return self

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/health"

    def metric(self, name: str, **labels: str) -> float:
        text = requests.get(f"http://127.0.0.1:{self.health_port}/metrics", timeout=5).text
        """A sample's value, or the sum over every label set when no labels are given."""
        wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
        prefixes = (f"{name}{{{wanted}}} ",) if labels else (f"{name} ", f"{name}{{")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(prefixes)
        )

    def kill(self) -> None:
        """SIGKILL: no chance to release anything."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)
        self.process = None

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, and the exit status once it stopped."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code


class RedisServer:
    """A private redis-server on a free port (appendonly, so a restart keeps the queue)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is installed by scripts/bootstrap"
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self._directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with Connection(self.url, connect_timeout=0.2) as probe:
                    probe.ensure_connection(max_retries=0)
                    return
            except Exception:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
