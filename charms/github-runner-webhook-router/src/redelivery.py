"""The ``redeliver-failed-webhooks`` action: parameters, credentials, and the workload's tool.

The parameters are checked here, the GitHub credentials read from Juju user secrets, and the
service's redelivery tool run in the workload container with the credentials in its
environment.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ops
from twelve_factor.workload import FLASK, PYTHON, SERVICE_USER

logger = logging.getLogger(__name__)

REDELIVER_MODULE = "webhook_router.redeliver"
REDELIVERY_TIMEOUT = 600.0
EXIT_BAD_ARGUMENTS = 1
EXIT_API_FAILURE = 2
TOKEN_SECRET_KEY = "token"  # noqa: S105 (a key name)
PRIVATE_KEY_SECRET_KEY = "private-key"  # noqa: S105 (a key name)
APP_PARAMS = (
    "github-app-client-id",
    "github-app-installation-id",
    "github-app-private-key-secret-id",
)
GITHUB_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)?$")


class RedeliveryError(Exception):
    """The action failed; the message is what the operator sees."""


class ArgumentError(RedeliveryError):
    """The parameters are wrong; the message says how to fix them."""


@dataclass(frozen=True)
class RedeliveryRequest:
    """What to redeliver, and the credentials as the tool's environment."""

    since: int
    github_path: str
    webhook_id: int
    auth_environment: dict[str, str]

    def command(self) -> list[str]:
        """The tool's command line (credentials travel in the environment, not argv)."""
        return [
            PYTHON,
            "-m",
            REDELIVER_MODULE,
            "--since",
            str(self.since),
            "--github-path",
            self.github_path,
            "--webhook-id",
            str(self.webhook_id),
        ]


def build_request(params: Mapping[str, Any], model: ops.Model) -> RedeliveryRequest:
    """Validate the action parameters and fetch the credentials they point at.

    Args:
        params: the action parameters.
        model: the model, to read the user secrets.

    Returns:
        The request.

    Raises:
        ArgumentError: a parameter is missing or invalid, or a secret cannot be read.
    """
    since = _integer(params, "since", minimum=0)
    webhook_id = _integer(params, "webhook-id", minimum=1)
    github_path = params.get("github-path")
    if not isinstance(github_path, str) or not GITHUB_PATH.match(github_path):
        raise ArgumentError("github-path must be 'organisation' or 'organisation/repository'")
    token_secret = params.get("github-token-secret-id")
    app_given = [name for name in APP_PARAMS if params.get(name) not in (None, "")]
    if token_secret and app_given:
        raise ArgumentError(
            "give either github-token-secret-id or the github-app-* parameters, not both"
        )
    if token_secret:
        token = _secret_value(model, str(token_secret), TOKEN_SECRET_KEY)
        auth = {"GITHUB_TOKEN": token}
    elif app_given:
        missing = [name for name in APP_PARAMS if name not in app_given]
        if missing:
            raise ArgumentError(f"missing GitHub app parameters: {', '.join(missing)}")
        private_key = _secret_value(
            model, str(params["github-app-private-key-secret-id"]), PRIVATE_KEY_SECRET_KEY
        )
        auth = {
            "GITHUB_APP_CLIENT_ID": str(params["github-app-client-id"]),
            "GITHUB_APP_INSTALLATION_ID": str(params["github-app-installation-id"]),
            "GITHUB_APP_PRIVATE_KEY": private_key,
        }
    else:
        raise ArgumentError(
            "give github-token-secret-id, or github-app-client-id, "
            "github-app-installation-id and github-app-private-key-secret-id"
        )
    return RedeliveryRequest(
        since=since, github_path=github_path, webhook_id=webhook_id, auth_environment=auth
    )


def _integer(params: Mapping[str, Any], name: str, *, minimum: int) -> int:
    value = params.get(name)
    if value is None:
        raise ArgumentError(f"missing parameter {name}")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArgumentError(f"{name} must be an integer of at least {minimum}")
    return value


def _secret_value(model: ops.Model, secret_id: str, key: str) -> str:
    """Read one key of a user secret granted to the application."""
    try:
        content = model.get_secret(id=secret_id).get_content(refresh=True)
    except ops.SecretNotFoundError as exc:
        raise ArgumentError(
            f"secret {secret_id} not found; grant it with "
            f"'juju grant-secret {secret_id} {model.app.name}'"
        ) from exc
    except ops.ModelError as exc:
        raise ArgumentError(
            f"cannot read secret {secret_id} (is it granted to {model.app.name}?)"
        ) from exc
    value = content.get(key)
    if not value:
        raise ArgumentError(f"secret {secret_id} has no '{key}' key")
    return value


def redeliver(container: ops.Container, request: RedeliveryRequest) -> int:
    """Run the tool in the workload and return how many deliveries it redelivered.

    Raises:
        RedeliveryError: the tool refused the arguments, GitHub failed, or the output is odd.
    """
    if not container.can_connect():
        raise RedeliveryError("the workload container is not reachable yet; try again later")
    try:
        process = container.exec(
            request.command(),
            environment=request.auth_environment,
            working_dir=FLASK.app_dir,
            user=SERVICE_USER,
            timeout=REDELIVERY_TIMEOUT,
        )
        stdout, _ = process.wait_output()
    except ops.pebble.ExecError as exc:
        detail = _last_line(exc.stderr)
        if exc.exit_code == EXIT_BAD_ARGUMENTS:
            raise RedeliveryError(f"the redelivery tool refused the arguments: {detail}") from exc
        if exc.exit_code == EXIT_API_FAILURE:
            raise RedeliveryError(f"GitHub API request failed: {detail}") from exc
        raise RedeliveryError(f"redelivery failed (exit {exc.exit_code}): {detail}") from exc
    except (ops.pebble.ChangeError, ops.pebble.TimeoutError) as exc:
        raise RedeliveryError("the redelivery tool did not finish; see juju debug-log") from exc
    return _redelivered_count(stdout)


def _redelivered_count(stdout: str) -> int:
    try:
        result = json.loads(_last_line(stdout))
    except json.JSONDecodeError as exc:
        raise RedeliveryError(f"unexpected output from the redelivery tool: {stdout!r}") from exc
    count = result.get("redelivered") if isinstance(result, dict) else None
    if isinstance(count, bool) or not isinstance(count, int):
        raise RedeliveryError(f"unexpected output from the redelivery tool: {stdout!r}")
    return count


def _last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"
