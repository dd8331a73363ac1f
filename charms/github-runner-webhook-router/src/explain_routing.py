"""The ``explain-routing`` action: the service's own explanation of a routing decision.

The workload's ``python3 -m webhook_router.explain`` routes the given labels (or a stored
delivery body) with the routing table the service runs with, and says which flavour, by which
rule, or why none; the charm runs it with the service's environment and returns its answer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import ops
from twelve_factor.workload import FLASK, PYTHON, SERVICE_USER

EXPLAIN_MODULE = "webhook_router.explain"
EXPLAIN_TIMEOUT = 60.0
PAYLOAD_DIR = "/tmp"  # noqa: S108 (inside the workload container, removed after use)
RESULT_KEYS = {
    "labels": "labels",
    "routed_labels": "routed-labels",
    "flavour": "flavour",
    "position": "position",
    "reason": "reason",
    "rule": "rule",
    "repository": "repository",
    "repository_allowed": "repository-allowed",
    "action": "action",
}


class ExplainError(Exception):
    """The action failed; the message is what the operator sees."""


def explain(
    container: ops.Container, params: Mapping[str, Any], environment: Mapping[str, str]
) -> dict[str, str]:
    """Run the explain tool in the workload and return its answer as action results.

    Args:
        container: the workload container.
        params: the action parameters: ``labels`` or ``payload``, not both.
        environment: the service's environment (its routing table).

    Raises:
        ExplainError: wrong parameters, or the tool refused or failed.
    """
    labels = str(params.get("labels") or "").strip()
    payload = str(params.get("payload") or "")
    if bool(labels) == bool(payload.strip()):
        raise ExplainError("give labels (comma-separated) or payload (a delivery body), not both")
    path = f"{PAYLOAD_DIR}/explain-{uuid.uuid4().hex}.json"
    command = [PYTHON, "-m", EXPLAIN_MODULE, "--json"]
    if labels:
        command.append(f"--labels={labels}")
    else:
        container.push(
            path, payload, make_dirs=True, permissions=0o600, user=SERVICE_USER, group=SERVICE_USER
        )
        command.append(f"--payload={path}")
    try:
        process = container.exec(
            command,
            environment=dict(environment),
            working_dir=FLASK.app_dir,
            user=SERVICE_USER,
            timeout=EXPLAIN_TIMEOUT,
        )
        stdout, _ = process.wait_output()
    except ops.pebble.ExecError as exc:
        stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
        message = stderr.strip() or f"the explain tool failed (exit {exc.exit_code})"
        raise ExplainError(message) from exc
    except (ops.pebble.ChangeError, ops.pebble.TimeoutError) as exc:
        raise ExplainError("the explain tool did not finish; see juju debug-log") from exc
    finally:
        if payload:
            container.remove_path(path, recursive=True)
    return results(stdout)


def results(stdout: str) -> dict[str, str]:
    """The tool's JSON answer as action results (lists comma-joined, absent values left out).

    Raises:
        ExplainError: the output is not the tool's JSON object.
    """
    try:
        answer = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise ExplainError("unexpected output from the explain tool; see juju debug-log") from exc
    if not isinstance(answer, dict):
        raise ExplainError("unexpected output from the explain tool; see juju debug-log")
    found: dict[str, str] = {}
    for key, name in RESULT_KEYS.items():
        value = answer.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        found[name] = str(value)
    return found
