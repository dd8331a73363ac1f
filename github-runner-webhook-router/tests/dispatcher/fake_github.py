"""A local fake of the GitHub REST endpoints the dispatcher calls, per GitHub's documentation.

- `GET /repos/{owner}/{repo}/actions/jobs/{job_id}` ("Get a job for a workflow run"): 200 with
  the job object (`id`, `status`, `created_at`, `labels`, ...), 404 when unknown.
- `POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig` and
  `POST /orgs/{org}/actions/runners/generate-jitconfig` ("Create configuration for a
  just-in-time runner"): body `name`, `runner_group_id`, `labels` (1 to 100), optional
  `work_folder`; 201 with `runner` and `encoded_jit_config`; 422 on a bad body.
- `DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}` and
  `DELETE /orgs/{org}/actions/runners/{runner_id}` ("Delete a self-hosted runner"): 204, 404
  for a runner it never registered.
- `POST /app/installations/{id}/access_tokens`: an App JWT (RS256, `iss` = client id) buys an
  installation token (201 with `token`, `expires_at`).
Every other call needs `Authorization: Bearer <token>` when the fake has a token, else 401.
With `prefix="/api/v3"` the endpoints are under that path, as on GitHub Enterprise Server.
`token_lifetime` sets how long installation tokens live (GitHub: one hour); while
`token_gate` is cleared, token exchanges wait for it (a slow GitHub).

A job's status: scripted answers first (`script(job_id, 500, 500, "queued")`), then
`in_progress` once `taken(job_id)` says so, else `queued`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

JOB_PATH = re.compile(r"/repos/([^/]+)/([^/]+)/actions/jobs/(\d+)")
JIT_PATH = re.compile(r"/(repos/[^/]+/[^/]+|orgs/[^/]+)/actions/runners/generate-jitconfig")
TOKEN_PATH = re.compile(r"/app/installations/(\d+)/access_tokens")
RUNNER_PATH = re.compile(r"/(repos/[^/]+/[^/]+|orgs/[^/]+)/actions/runners/(\d+)")


class FakeGitHub(ThreadingHTTPServer):
    """The fake's state: tokens, scripted answers, what was asked."""

    daemon_threads = True

    def __init__(
        self,
        token: str | None = None,
        app_public_key: Any = None,
        app_client_id: str = "",
        installation_token: str = "ghs_fake_installation",  # noqa: S107 - a fake's token
        prefix: str = "",
        token_lifetime: timedelta = timedelta(hours=1),
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.prefix = prefix
        self.token_lifetime = token_lifetime
        self.tokens_issued = 0
        self.token = token
        self.app_public_key = app_public_key
        self.app_client_id = app_client_id
        self.installation_token = installation_token
        self.lock = threading.Lock()
        self.scripts: dict[int, list[int | str]] = {}
        self.unknown: set[int] = set()
        self.taken_jobs: set[int] = set()
        self.taken: Callable[[int], bool] = lambda job_id: job_id in self.taken_jobs
        self.requests: list[str] = []
        self.jit_requests: list[dict[str, Any]] = []
        self.deleted_runners: list[int] = []
        self.token_gate = threading.Event()
        self.token_gate.set()
        self.token_requests = 0
        self.created_at = datetime.now(UTC) - timedelta(seconds=1)

    @property
    def url(self) -> str:
        """The API base URL, as DISPATCHER_GITHUB_API_URL takes it."""
        return f"http://127.0.0.1:{self.server_address[1]}{self.prefix}"

    def job_url(self, job_id: int, repository: str = "octo-org/octo-repo") -> str:
        """The job's REST URL on this fake."""
        return f"{self.url}/repos/{repository}/actions/jobs/{job_id}"

    def script(self, job_id: int, *answers: int | str) -> None:
        """Answer the next GETs of the job with these (HTTP status codes or job statuses)."""
        with self.lock:
            self.scripts[job_id] = list(answers)

    def gets(self, job_id: int) -> int:
        """How many times the job was asked for."""
        with self.lock:
            return sum(
                1
                for line in self.requests
                if line.startswith("GET ") and line.endswith(f"/{job_id}")
            )

    def next_answer(self, job_id: int) -> int | str:
        with self.lock:
            if job_id in self.unknown:
                return 404
            queued = self.scripts.get(job_id)
            if queued:
                return queued.pop(0)
        return "in_progress" if self.taken(job_id) else "queued"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGitHub
    protocol_version = "HTTP/1.1"  # keep-alive, as api.github.com

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _answer(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _api_path(self) -> str:
        """The path below the API base; outside it nothing matches."""
        if not self.path.startswith(self.server.prefix + "/"):
            return ""
        return self.path[len(self.server.prefix) :]

    def _authorised(self) -> bool:
        allowed = {self.server.token, self.server.installation_token} - {None}
        if self.server.token is None and self.server.app_public_key is None:
            return True
        return self.headers.get("Authorization", "").removeprefix("Bearer ") in allowed

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(f"GET {self.path}")
        match = JOB_PATH.fullmatch(self._api_path())
        if not self._authorised():
            return self._answer(401, {"message": "Bad credentials"})
        if match is None:
            return self._answer(404, {"message": "Not Found"})
        job_id = int(match[3])
        answer = self.server.next_answer(job_id)
        if isinstance(answer, int):
            return self._answer(answer, {"message": f"HTTP {answer}"})
        return self._answer(
            200,
            {
                "id": job_id,
                "run_id": 1,
                "url": f"{self.server.url}{self._api_path()}",
                "status": answer,
                "conclusion": None,
                "created_at": self.server.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "labels": ["self-hosted", "linux", "x64"],
            },
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with self.server.lock:
            self.server.requests.append(f"POST {self.path}")
        if TOKEN_PATH.fullmatch(self._api_path()) is not None:
            return self._installation_token()
        if not self._authorised():
            return self._answer(401, {"message": "Bad credentials"})
        if JIT_PATH.fullmatch(self._api_path()) is None:
            return self._answer(404, {"message": "Not Found"})
        try:
            body = json.loads(raw)
        except ValueError:
            return self._answer(400, {"message": "Problems parsing JSON"})
        labels = body.get("labels")
        valid = (
            isinstance(body.get("name"), str)
            and isinstance(body.get("runner_group_id"), int)
            and isinstance(labels, list)
            and 1 <= len(labels) <= 100
            and all(isinstance(label, str) for label in labels)
        )
        if not valid:
            return self._answer(422, {"message": "Validation Failed"})
        with self.server.lock:
            self.server.jit_requests.append({"path": self._api_path(), **body})
            runner_id = len(self.server.jit_requests)
        config = base64.b64encode(json.dumps({"runner": body["name"]}).encode()).decode()
        return self._answer(
            201,
            {
                "runner": {"id": runner_id, "name": body["name"], "status": "offline"},
                "encoded_jit_config": config,
            },
        )

    def do_DELETE(self) -> None:
        with self.server.lock:
            self.server.requests.append(f"DELETE {self.path}")
        if not self._authorised():
            return self._answer(401, {"message": "Bad credentials"})
        match = RUNNER_PATH.fullmatch(self._api_path())
        with self.server.lock:
            known = match is not None and 1 <= int(match[2]) <= len(self.server.jit_requests)
            if known and match is not None:
                self.server.deleted_runners.append(int(match[2]))
        if not known:
            return self._answer(404, {"message": "Not Found"})
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None

    def _installation_token(self) -> None:
        with self.server.lock:
            self.server.token_requests += 1
        self.server.token_gate.wait(60)
        assertion = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(assertion, self.server.app_public_key, algorithms=["RS256"])
        except (jwt.PyJWTError, TypeError, ValueError):
            return self._answer(401, {"message": "A JSON web token could not be decoded"})
        if claims.get("iss") != self.server.app_client_id:
            return self._answer(401, {"message": "Integration not found"})
        expires = (datetime.now(UTC) + self.server.token_lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.server.lock:
            self.server.tokens_issued += 1
        return self._answer(201, {"token": self.server.installation_token, "expires_at": expires})


@contextmanager
def running(server: FakeGitHub) -> Iterator[FakeGitHub]:
    """Serve `server` from a thread for the duration of the block."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
