"""Parse and validate workflow_job deliveries, JSON or form-encoded, into a Job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from webhook_router.errors import PayloadError, UnsupportedMediaTypeError

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Job:
    """The parts of a workflow_job delivery the router acts on.

    Attributes:
        action: queued, in_progress, completed, waiting (or a future action).
        labels: the job's labels exactly as GitHub sent them.
        url: the job's REST API URL.
    """

    action: str
    labels: tuple[str, ...]
    url: str


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
    return Job(action=action, labels=tuple(labels), url=url)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)
