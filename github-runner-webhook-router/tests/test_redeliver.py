"""The redelivery command against a local fake of GitHub's webhook delivery API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from webhook_router.redeliver import (
    EXIT_API_FAILURE,
    EXIT_BAD_ARGUMENTS,
    EXIT_OK,
    Delivery,
    main,
    select_for_redelivery,
)

ROOT = Path(__file__).parent.parent
TOKEN = "ghp_token_for_tests"
INSTALLATION_TOKEN = "ghs_installation_token"
CLIENT_ID = "Iv1.testclient"
INSTALLATION_ID = "4242"
NOW = datetime.now(UTC)
NOWHERE = "http://127.0.0.1:1"  # never reached: bad arguments stop the command first


def delivery(
    id_: int,
    guid: str,
    age_minutes: int,
    status: str = "Invalid HTTP Response: 503",
    event: str = "workflow_job",
    action: str | None = "queued",
) -> dict[str, Any]:
    return {
        "id": id_,
        "guid": guid,
        "delivered_at": (NOW - timedelta(minutes=age_minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "redelivery": False,
        "duration": 0.1,
        "status": status,
        "status_code": 200 if status == "OK" else 503,
        "event": event,
        "action": action,
        "installation_id": None,
        "repository_id": 1,
    }


# Newest first, as GitHub lists them; split over two pages.
PAGES = [
    [
        delivery(10, "A", 1),
        delivery(9, "B", 2, status="OK"),  # B's redelivery succeeded
        delivery(8, "F", 3),
        delivery(7, "C", 4, action="in_progress"),
    ],
    [
        delivery(6, "D", 5, event="push", action=None),
        delivery(5, "F", 6),
        delivery(4, "B", 7),
        delivery(3, "E", 600),  # older than --since
    ],
]


class FakeGitHub(ThreadingHTTPServer):
    """Repository and organisation hooks, delivery attempts and App installation tokens."""

    def __init__(self, public_key: Any) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.public_key = public_key
        self.attempts: list[str] = []
        self.requests: list[str] = []
        self.fail: dict[str, int] = {}
        self.next_link_host: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _answer(
        self, status: int, document: object, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        return self.headers.get("Authorization") in {
            f"Bearer {TOKEN}",
            f"Bearer {INSTALLATION_TOKEN}",
        }

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.requests.append(f"GET {parts.path}")
        if (status := self.server.fail.get("list")) is not None:
            return self._answer(status, {"message": "boom"})
        if not self._authorised():
            return self._answer(401, {"message": "Bad credentials"})
        if not parts.path.endswith("/hooks/77/deliveries"):
            return self._answer(404, {"message": "Not Found"})
        assert parse_qs(parts.query)["per_page"] == ["100"]
        cursor = parse_qs(parts.query).get("cursor", ["0"])[0]
        page = int(cursor)
        headers = {}
        if page + 1 < len(PAGES):
            host = self.server.next_link_host or self.server.url
            headers["Link"] = f'<{host}{parts.path}?per_page=100&cursor={page + 1}>; rel="next"'
        return self._answer(200, PAGES[page], headers)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self.server.requests.append(f"POST {path}")
        if path == f"/app/installations/{INSTALLATION_ID}/access_tokens":
            assertion = self.headers.get("Authorization", "").removeprefix("Bearer ")
            claims = jwt.decode(assertion, self.server.public_key, algorithms=["RS256"])
            assert claims["iss"] == CLIENT_ID
            assert claims["exp"] - claims["iat"] <= 600
            return self._answer(201, {"token": INSTALLATION_TOKEN, "expires_at": "later"})
        if not self._authorised():
            return self._answer(401, {"message": "Bad credentials"})
        if (status := self.server.fail.get("attempt")) is not None:
            return self._answer(status, {"message": "boom"})
        self.server.attempts.append(path)
        return self._answer(202, {})


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def github(private_key: rsa.RSAPrivateKey) -> Iterator[FakeGitHub]:
    server = FakeGitHub(private_key.public_key())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def arguments(path: str, since: str = "3600", api_url: str | None = None) -> list[str]:
    """The command line for webhook 77 of ``path``, with ``--api-url`` only when given."""
    argv = ["--github-path", path, "--webhook-id", "77", "--since", since]
    return argv if api_url is None else [*argv, "--api-url", api_url]


def run(
    github: FakeGitHub, env: dict[str, str], path: str = "octo-org/octo-repo", *extra: str
) -> int:
    return main([*arguments(path, api_url=github.url), *extra], env)


def test_redelivers_each_failed_queued_guid_once_across_pages(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(github, {"GITHUB_TOKEN": TOKEN})

    assert code == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"redelivered": 2}
    hook = "/repos/octo-org/octo-repo/hooks/77/deliveries"
    assert sorted(github.attempts) == [f"{hook}/10/attempts", f"{hook}/8/attempts"]
    assert github.requests.count(f"GET {hook}") == 2  # followed the Link header


def test_organisation_webhooks_use_the_orgs_endpoints(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(github, {"GITHUB_TOKEN": TOKEN}, "octo-org")

    assert code == EXIT_OK
    assert all(path.startswith("/orgs/octo-org/hooks/77/") for path in github.attempts)
    assert json.loads(capsys.readouterr().out) == {"redelivered": 2}


def test_github_app_credentials_are_exchanged_for_an_installation_token(
    github: FakeGitHub, private_key: rsa.RSAPrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "GITHUB_APP_CLIENT_ID": CLIENT_ID,
        "GITHUB_APP_INSTALLATION_ID": INSTALLATION_ID,
        "GITHUB_APP_PRIVATE_KEY": pem(private_key),
    }

    code = run(github, env)

    assert code == EXIT_OK
    assert github.requests[0] == f"POST /app/installations/{INSTALLATION_ID}/access_tokens"
    assert github.requests.count(f"POST /app/installations/{INSTALLATION_ID}/access_tokens") == 1
    assert json.loads(capsys.readouterr().out) == {"redelivered": 2}


def test_since_zero_redelivers_nothing_and_stops_after_the_first_page(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = arguments("o/r", since="0", api_url=github.url)

    assert main(argv, {"GITHUB_TOKEN": TOKEN}) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"redelivered": 0}
    assert github.attempts == []
    assert len(github.requests) == 1


@pytest.mark.parametrize(
    ("failure", "status"),
    [("list", 500), ("list", 404), ("list", 403), ("attempt", 422), ("attempt", 502)],
)
def test_api_errors_exit_with_the_api_failure_code(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str], failure: str, status: int
) -> None:
    github.fail[failure] = status

    code = run(github, {"GITHUB_TOKEN": TOKEN})

    assert code == EXIT_API_FAILURE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"HTTP {status}" in captured.err
    assert TOKEN not in captured.err


def test_bad_token_exits_with_the_api_failure_code(github: FakeGitHub) -> None:
    assert run(github, {"GITHUB_TOKEN": "wrong"}) == EXIT_API_FAILURE


def test_unreachable_api_exits_with_the_api_failure_code(github: FakeGitHub) -> None:
    argv = arguments("o/r", since="60", api_url="http://127.0.0.1:1")

    assert main(argv, {"GITHUB_TOKEN": TOKEN}) == EXIT_API_FAILURE


def test_pagination_link_to_another_host_is_not_followed(github: FakeGitHub) -> None:
    github.next_link_host = "http://127.0.0.2:9"

    assert run(github, {"GITHUB_TOKEN": TOKEN}) == EXIT_API_FAILURE
    assert github.attempts == []


def test_api_url_comes_from_github_api_url_when_not_given(
    github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = arguments("o/r")

    assert main(argv, {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url}) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"redelivered": 2}


APP = {
    "GITHUB_APP_CLIENT_ID": CLIENT_ID,
    "GITHUB_APP_INSTALLATION_ID": INSTALLATION_ID,
    "GITHUB_APP_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
}


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--webhook-id", "77", "--since", "60"], {"GITHUB_TOKEN": TOKEN}),
        (["--github-path", "o/r", "--since", "60"], {"GITHUB_TOKEN": TOKEN}),
        (["--github-path", "o/r", "--webhook-id", "77"], {"GITHUB_TOKEN": TOKEN}),
        (["--github-path", "o/r", "--webhook-id", "x", "--since", "60"], {"GITHUB_TOKEN": TOKEN}),
        (["--github-path", "o/r", "--webhook-id", "0", "--since", "60"], {"GITHUB_TOKEN": TOKEN}),
        (["--github-path", "o/r", "--webhook-id", "7", "--since", "-1"], {"GITHUB_TOKEN": TOKEN}),
        (
            ["--github-path", "o/r/x", "--webhook-id", "7", "--since", "60"],
            {"GITHUB_TOKEN": TOKEN},
        ),
        (
            ["--github-path", "../x", "--webhook-id", "7", "--since", "9", "--api-url", NOWHERE],
            {"GITHUB_TOKEN": TOKEN},
        ),
        (
            ["--github-path", "o/r", "--webhook-id", "7", "--since", "60", "--api-url", "ftp://x"],
            {"GITHUB_TOKEN": TOKEN},
        ),
        (["--github-path", "o/r", "--webhook-id", "7", "--since", "60"], {}),
        (
            ["--github-path", "o/r", "--webhook-id", "7", "--since", "60"],
            {**APP, "GITHUB_TOKEN": TOKEN},
        ),
        (
            ["--github-path", "o/r", "--webhook-id", "7", "--since", "60"],
            {"GITHUB_APP_CLIENT_ID": CLIENT_ID},
        ),
    ],
    ids=[
        "no-path",
        "no-webhook-id",
        "no-since",
        "webhook-id-text",
        "webhook-id-zero",
        "since-negative",
        "path-three-parts",
        "path-dots",
        "api-url-ftp",
        "no-credentials",
        "token-and-app",
        "partial-app",
    ],
)
def test_bad_arguments_exit_with_the_bad_arguments_code(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, env) == EXIT_BAD_ARGUMENTS
    assert capsys.readouterr().err.startswith("error:")


def test_invalid_app_private_key_exits_with_the_bad_arguments_code(github: FakeGitHub) -> None:
    assert run(github, APP) == EXIT_BAD_ARGUMENTS


def test_runs_as_a_module_and_prints_json(github: FakeGitHub) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webhook_router.redeliver", *arguments("o/r", api_url=github.url)],
        cwd=ROOT,
        env={"GITHUB_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == EXIT_OK, result.stderr
    assert json.loads(result.stdout) == {"redelivered": 2}


def test_select_for_redelivery_skips_guids_with_any_ok_delivery() -> None:
    at = NOW - timedelta(minutes=1)
    deliveries = [
        Delivery(3, "g", at, "OK", "workflow_job", "queued"),
        Delivery(2, "g", at, "failed", "workflow_job", "queued"),
        Delivery(1, "h", at, "failed", "workflow_job", "queued"),
    ]

    chosen = select_for_redelivery(deliveries, NOW - timedelta(hours=1))

    assert [item.id for item in chosen] == [1]
