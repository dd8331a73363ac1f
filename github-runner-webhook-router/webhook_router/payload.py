"""Parse and validate workflow_job deliveries, JSON or form-encoded, into a Job."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from webhook_router.errors import PayloadError, UnsupportedMediaTypeError

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# GitHub's owner and repository names: letters, digits, '-', '_' and '.'.
_FULL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
_TIMESTAMPS = ("created_at", "started_at", "completed_at")


@dataclass(frozen=True)
class Job:
    """The parts of a workflow_job delivery the router acts on.

    Attributes:
        action: queued, in_progress, completed, waiting (or a future action).
        labels: the job's labels exactly as GitHub sent them.
        url: the job's REST API URL.
        job_id: `workflow_job.id`, the job's identity (a re-run gets a new one).
        run_id: `workflow_job.run_id`.
        run_attempt: `workflow_job.run_attempt`; payloads older than that field count as 1.
        repository: `repository.full_name`, `owner/name`.
        times: the job's ISO 8601 timestamps that are strings (`created_at`, `started_at`,
            `completed_at`), unparsed: only metrics read them.
        runner_name: the runner that took the job, when one did.
    """

    action: str
    labels: tuple[str, ...]
    url: str
    job_id: int
    run_id: int
    run_attempt: int
    repository: str
    times: tuple[tuple[str, str], ...] = ()
    runner_name: str | None = None

    @property
    def owner(self) -> str:
        """The repository's owner: the organisation (or user) the job belongs to."""
        return self.repository.split("/", 1)[0]

    @property
    def identity(self) -> str:
        """What makes two deliveries the same job attempt; all of it is covered by the signature.

        `X-GitHub-Delivery` is not: a captured body resent with another delivery id is still
        this job attempt, and a job going queued, waiting, queued again keeps its id.
        """
        return f"{self.job_id}:{self.run_attempt}"

    def time(self, name: str) -> str | None:
        """One of the job's timestamps as sent, or None."""
        return dict(self.times).get(name)


def parse_job(body: bytes, media_type: str | None) -> Job:
    """Read a workflow_job delivery body into a Job.

    Args:
        body: the raw request body.
        media_type: the Content-Type without parameters.

    Returns:
        The job.

    Raises:
        UnsupportedMediaTypeError: neither JSON nor a form.
        PayloadError: the body is not a workflow_job payload of the expected shape.
    """
    if media_type == JSON:
        document = _load_json(body)
    elif media_type == FORM:
        document = _load_json(_form_payload(body))
    else:
        raise UnsupportedMediaTypeError()
    return _job_from(document)


def _form_payload(body: bytes) -> bytes:
    """Extract the `payload` field GitHub sends when the webhook's content type is form."""
    try:
        fields = parse_qs(
            body.decode("ascii"), strict_parsing=False, errors="strict", max_num_fields=20
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError("Invalid form body") from exc
    values = fields.get("payload", [])
    if len(values) != 1:
        raise PayloadError("Form body must have exactly one 'payload' field")
    return values[0].encode("utf-8")


def _load_json(text: bytes) -> object:
    try:
        return json.loads(text)
    # RecursionError: deeply nested arrays; ValueError covers bad JSON and bad UTF-8.
    except (ValueError, RecursionError) as exc:
        raise PayloadError("Body is not valid JSON") from exc


def _job_from(document: object) -> Job:
    if not isinstance(document, dict):
        raise PayloadError("Payload must be a JSON object")
    action = document.get("action")
    if not isinstance(action, str) or not action:
        raise PayloadError("Payload 'action' must be a non-empty string")
    job: Any = document.get("workflow_job")
    if not isinstance(job, dict):
        raise PayloadError("Payload 'workflow_job' must be an object")
    labels = job.get("labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise PayloadError("Payload 'workflow_job.labels' must be a list of strings")
    url = job.get("url")
    if not isinstance(url, str) or not _is_http_url(url):
        raise PayloadError("Payload 'workflow_job.url' must be an http(s) URL")
    repository: Any = document.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    if not isinstance(full_name, str) or not _FULL_NAME.fullmatch(full_name):
        raise PayloadError("Payload 'repository.full_name' must be 'owner/name'")
    runner_name = job.get("runner_name")
    return Job(
        action=action,
        labels=tuple(labels),
        url=url,
        job_id=_positive(job, "id"),
        run_id=_positive(job, "run_id"),
        run_attempt=_positive(job, "run_attempt", default=1),
        repository=full_name,
        times=tuple(
            (name, value) for name in _TIMESTAMPS if isinstance(value := job.get(name), str)
        ),
        runner_name=runner_name if isinstance(runner_name, str) and runner_name else None,
    )


def _positive(job: dict[str, Any], name: str, default: int | None = None) -> int:
    value = job.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise PayloadError(f"Payload 'workflow_job.{name}' must be a positive integer")
    return value


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)
