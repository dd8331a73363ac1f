"""The messages the dispatcher reads: queued jobs (SPEC 2.2) and lifecycle events."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from webhook_router.github_api import same_origin
from webhook_router.message import LIFECYCLE_ACTIONS

from runner_dispatcher.errors import DispatcherError

Reason = Literal["malformed", "bad_url", "unsupported_labels"]
REASONS: tuple[Reason, ...] = ("malformed", "bad_url", "unsupported_labels")
# A GitHub owner or repository name; also refuses "." and ".." below.
_NAME = r"[A-Za-z0-9_.-]{1,100}"
_JOB_PATH = re.compile(
    rf"/repos/(?P<owner>{_NAME})/(?P<repo>{_NAME})/actions/jobs/(?P<id>\d{{1,20}})"
)
_OPTIONAL_INTEGERS = ("job_id", "run_id", "run_attempt")
_OPTIONAL_TEXTS = ("repository", "flavour", "status")
# The lifecycle actions that say a runner took the job (the job statuses GitHub reports then).
TAKEN_ACTIONS = frozenset({"in_progress", "completed"}) & LIFECYCLE_ACTIONS
# SQLite's INTEGER range, where the dispatcher keeps the ids of jobs taken.
_MAX_ID = 2**63
# C0 controls and DEL: never in a label or name; a NUL would not even fit in an argv/env.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RejectedMessage(DispatcherError):  # noqa: N818 - the name the router's test imports
    """The message can never lead to a runner: it is rejected for good, not requeued.

    Attributes:
        reason: one of REASONS, a bounded value fit for a metric label and a log line.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason: Reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class QueuedJob:
    """A validated job message.

    Attributes:
        labels: the labels the job was routed on, lowercased.
        url: the job's REST URL, on the configured API host.
        owner: the repository owner, from the URL (the API calls use the URL's repository).
        repo: the repository name, from the URL.
        job_id: the id at the end of the URL (a message's `job_id` is ignored).
        run_id: the workflow run, when the message carries it.
        run_attempt: the run attempt, when the message carries it.
        repository: `owner/repo` from the URL (a message's `repository` is ignored): GitHub
            is asked about, and the spawner told of, one and the same job.
        flavour: the flavour the router routed the job to, when the message says.
        status: the webhook action the router saw (`queued`), when the message says.
    """

    labels: frozenset[str]
    url: str
    owner: str
    repo: str
    job_id: int
    run_id: int | None = None
    run_attempt: int | None = None
    repository: str = ""
    flavour: str | None = None
    status: str | None = None


def parse_job(payload: object, *, supported_labels: Collection[str], api_url: str) -> QueuedJob:
    """Validate a message as the last consumer did, with the URL held to the jobs endpoint.

    The reference router's message (`labels`, `status`, `url`) and the newer one (plus
    `job_id`, `run_id`, `run_attempt`, `repository`, `flavour`) are both accepted; other keys
    are ignored. Labels and supported labels are compared lowercased; an empty label set
    always passes (SPEC 2.2).

    Args:
        payload: the message body as kombu decoded it: the JSON text the router published.
        supported_labels: the labels the runners this dispatcher starts support.
        api_url: GitHub's API base URL: https://api.github.com or a GHES `https://host/api/v3`.

    Returns:
        The job.

    Raises:
        RejectedMessage: malformed body, URL not a job on the API host, or unsupported labels.
    """
    document = _document(payload)
    labels = _labels(document.get("labels"))
    url = document.get("url")
    if not isinstance(url, str):
        raise RejectedMessage("malformed", "url is missing or not a string")
    owner, repo, url_job_id = _job_location(url, api_url)
    extra = _optional_fields(document)
    unsupported = labels - {label.lower() for label in supported_labels}
    if unsupported:
        raise RejectedMessage(
            "unsupported_labels", f"labels not supported here: {', '.join(sorted(unsupported))}"
        )
    # `job_id` and `repository` are type-checked but never used: both come from the URL, the
    # job GitHub is asked about, so the spawner is always told of that same job. (GitHub's
    # own published example payload names another repository in `repository` than in the
    # job's URL, so a disagreement is not refused.)
    return QueuedJob(
        labels=labels,
        url=url,
        owner=owner,
        repo=repo,
        job_id=url_job_id,
        run_id=_integer_or_none(extra.get("run_id")),
        run_attempt=_integer_or_none(extra.get("run_attempt")),
        repository=f"{owner}/{repo}",
        flavour=_text_or_none(extra.get("flavour")),
        status=_text_or_none(extra.get("status")),
    )


def _document(payload: object) -> dict[str, object]:
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RejectedMessage("malformed", "body is not UTF-8") from exc
    if not isinstance(payload, str):
        raise RejectedMessage("malformed", "body is not JSON text")
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise RejectedMessage("malformed", "body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise RejectedMessage("malformed", "body is not a JSON object")
    return document


def _labels(value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
        raise RejectedMessage("malformed", "labels must be a list of strings")
    if any(_CONTROL.search(label) for label in value):
        raise RejectedMessage("malformed", "a label contains a control character")
    return frozenset(label.lower() for label in value)


def _job_location(url: str, api_url: str) -> tuple[str, str, int]:
    """The owner, repository and job id of a job URL under `api_url`."""
    base = urlsplit(api_url.rstrip("/"))
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RejectedMessage("bad_url", "url is not a URL") from exc
    # The comparison the API client makes before sending a token: one rule for both.
    if not same_origin(url, api_url) or not parts.path.startswith(base.path + "/"):
        raise RejectedMessage("bad_url", "url is not on the configured GitHub API host")
    match = _JOB_PATH.fullmatch(parts.path[len(base.path) :])
    if match is None or parts.query or parts.fragment:
        raise RejectedMessage("bad_url", "url is not a workflow job's API URL")
    owner, repo = match["owner"], match["repo"]
    if {owner, repo} & {".", ".."}:
        raise RejectedMessage("bad_url", "url is not a workflow job's API URL")
    return owner, repo, int(match["id"])


def _optional_fields(document: dict[str, object]) -> dict[str, object]:
    """The newer message's fields that are present (null counts as absent), type-checked."""
    found: dict[str, object] = {}
    for name in _OPTIONAL_INTEGERS:
        value = document.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RejectedMessage("malformed", f"{name} must be a non-negative integer")
        found[name] = value
    for name in _OPTIONAL_TEXTS:
        value = document.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RejectedMessage("malformed", f"{name} must be a string")
        if _CONTROL.search(value):
            raise RejectedMessage("malformed", f"{name} contains a control character")
        found[name] = value
    return found


def _integer_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class LifecycleEvent:
    """A validated event of `<flavour>.events` (the router's `message.event_text`).

    Attributes:
        action: waiting, in_progress or completed.
        job_id: `workflow_job.id`.
        run_attempt: the run attempt the event is about.
    """

    action: str
    job_id: int
    run_attempt: int

    @property
    def taken(self) -> bool:
        """Whether the event says a runner took the job attempt (`waiting` does not)."""
        return self.action in TAKEN_ACTIONS


def parse_event(payload: object) -> LifecycleEvent:
    """Validate a lifecycle event: JSON text with `action`, `job_id` and `run_attempt`.

    The other fields of the router's event (`run_id`, `repository`, `flavour`, `url`,
    `runner_name`) are not needed to tell a job taken and are ignored.

    Raises:
        RejectedMessage: not a JSON object, an unknown action, or ids that are not positive
            integers (reason "malformed").
    """
    document = _document(payload)
    action = document.get("action")
    if not isinstance(action, str) or action not in LIFECYCLE_ACTIONS:
        raise RejectedMessage(
            "malformed", f"action is not one of {', '.join(sorted(LIFECYCLE_ACTIONS))}"
        )
    return LifecycleEvent(
        action=action,
        job_id=_positive(document, "job_id"),
        run_attempt=_positive(document, "run_attempt"),
    )


def _positive(document: dict[str, object], name: str) -> int:
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _MAX_ID:
        raise RejectedMessage("malformed", f"{name} must be a positive integer")
    return value
