"""The consumer's validation of a queued message (SPEC 2.2), as a table of cases."""

from __future__ import annotations

import json

import pytest
from runner_dispatcher.contract import REASONS, QueuedJob, RejectedMessage, parse_job
from runner_dispatcher.settings import Settings
from webhook_router.github_api import same_origin

GITHUB = "https://api.github.com"
GHES = "https://127.0.0.7/api/v3"
JOB = f"{GITHUB}/repos/octo-org/octo-repo/actions/jobs/1291536064"
SUPPORTED = frozenset({"large", "x64", "small"})


def text(**document: object) -> str:
    return json.dumps(document)


def test_reference_message_is_parsed_into_lowercased_labels_and_the_url() -> None:
    job = parse_job(
        text(labels=["Large", "X64", "large"], status="queued", url=JOB),
        supported_labels=SUPPORTED,
        api_url=GITHUB,
    )

    assert job == QueuedJob(
        labels=frozenset({"large", "x64"}),
        url=JOB,
        owner="octo-org",
        repo="octo-repo",
        job_id=1291536064,
        repository="octo-org/octo-repo",
        status="queued",
    )


def test_newer_message_fields_are_kept_and_unknown_keys_ignored() -> None:
    job = parse_job(
        text(
            labels=["x64"],
            status="queued",
            url=JOB,
            job_id=1291536064,
            run_id=2202229078,
            run_attempt=2,
            repository="octo-org/octo-repo",
            flavour="small",
            something_new={"nested": True},
        ),
        supported_labels=SUPPORTED,
        api_url=GITHUB,
    )

    assert (job.job_id, job.run_id, job.run_attempt, job.flavour) == (
        1291536064,
        2202229078,
        2,
        "small",
    )


def test_supported_labels_are_compared_lowercased() -> None:
    job = parse_job(text(labels=["GPU"], url=JOB), supported_labels={"Gpu"}, api_url=GITHUB)

    assert job.labels == {"gpu"}


def test_empty_label_set_always_passes() -> None:
    assert parse_job(text(labels=[], url=JOB), supported_labels=(), api_url=GITHUB).labels == set()


def test_ghes_job_url_under_the_configured_base_is_accepted() -> None:
    url = f"{GHES}/repos/o/r/actions/jobs/9"

    job = parse_job(text(labels=[], url=url), supported_labels=(), api_url=GHES + "/")

    assert (job.owner, job.repo, job.job_id) == ("o", "r", 9)


def test_bytes_payload_is_read_as_utf8_text() -> None:
    payload = text(labels=["x64"], url=JOB).encode()

    assert parse_job(payload, supported_labels=SUPPORTED, api_url=GITHUB).url == JOB


REJECTED = [
    ("not json", "{labels", GITHUB, "malformed"),
    ("json string", json.dumps("text"), GITHUB, "malformed"),
    ("json list", json.dumps([JOB]), GITHUB, "malformed"),
    ("dict not text", {"labels": [], "url": JOB}, GITHUB, "malformed"),
    ("labels null", text(labels=None, url=JOB), GITHUB, "malformed"),
    ("labels missing", text(url=JOB), GITHUB, "malformed"),
    ("labels string", text(labels="x64", url=JOB), GITHUB, "malformed"),
    ("label number", text(labels=[1], url=JOB), GITHUB, "malformed"),
    ("url missing", text(labels=[]), GITHUB, "malformed"),
    ("url number", text(labels=[], url=5), GITHUB, "malformed"),
    ("job_id text", text(labels=[], url=JOB, job_id="5"), GITHUB, "malformed"),
    ("run_attempt bool", text(labels=[], url=JOB, run_attempt=True), GITHUB, "malformed"),
    ("repository list", text(labels=[], url=JOB, repository=["o"]), GITHUB, "malformed"),
    (
        "nul in repository",
        text(labels=[], url=JOB, repository="octo-org/octo-repo\x00x"),
        GITHUB,
        "malformed",
    ),
    ("newline in a label", text(labels=["x64\nx"], url=JOB), GITHUB, "malformed"),
    ("nul in a label", text(labels=["x64\x00"], url=JOB), GITHUB, "malformed"),
    ("escape in flavour", text(labels=[], url=JOB, flavour="small\x1b[2J"), GITHUB, "malformed"),
    ("not utf-8", b"\xff\xfe", GITHUB, "malformed"),
    (
        "other host",
        text(labels=[], url="https://evil.example/repos/o/r/actions/jobs/1"),
        GITHUB,
        "bad_url",
    ),
    ("http not https", text(labels=[], url=JOB.replace("https", "http")), GITHUB, "bad_url"),
    ("other port", text(labels=[], url=JOB.replace(".com/", ".com:8443/")), GITHUB, "bad_url"),
    ("user info", text(labels=[], url=JOB.replace("https://", "https://u:p@")), GITHUB, "bad_url"),
    (
        "lookalike host",
        text(labels=[], url=JOB.replace("api.github.com", "api.github.com.evil")),
        GITHUB,
        "bad_url",
    ),
    (
        "github.com web url",
        text(labels=[], url="https://github.com/o/r/actions/runs/1/job/2"),
        GITHUB,
        "bad_url",
    ),
    ("not a job path", text(labels=[], url=f"{GITHUB}/repos/o/r/hooks/1"), GITHUB, "bad_url"),
    ("dot-dot", text(labels=[], url=f"{GITHUB}/repos/../r/actions/jobs/1"), GITHUB, "bad_url"),
    ("query", text(labels=[], url=JOB + "?x=1"), GITHUB, "bad_url"),
    (
        "ghes url outside base",
        text(labels=[], url="https://127.0.0.7/repos/o/r/actions/jobs/1"),
        GHES,
        "bad_url",
    ),
    ("github url on ghes", text(labels=[], url=JOB), GHES, "bad_url"),
    ("bad port", text(labels=[], url="https://api.github.com:99999/x"), GITHUB, "bad_url"),
    ("unsupported label", text(labels=["x64", "gpu"], url=JOB), GITHUB, "unsupported_labels"),
    ("self-hosted", text(labels=["self-hosted", "x64"], url=JOB), GITHUB, "unsupported_labels"),
    ("linux", text(labels=["Linux"], url=JOB), GITHUB, "unsupported_labels"),
]


@pytest.mark.parametrize(
    ("payload", "api_url", "reason"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_invalid_messages_are_rejected_with_a_bounded_reason(
    payload: object, api_url: str, reason: str
) -> None:
    with pytest.raises(RejectedMessage) as caught:
        parse_job(payload, supported_labels=SUPPORTED, api_url=api_url)

    assert caught.value.reason == reason
    assert caught.value.reason in REASONS


@pytest.mark.parametrize(
    "extra",
    [
        {"job_id": 999, "repository": "victim-org/secret-repo"},
        {"job_id": 1291536064, "repository": "Octo-Org/Octo-Repo"},
    ],
    ids=["another job", "same job, other case"],
)
def test_the_job_id_and_repository_always_come_from_the_url_github_is_asked_about(
    extra: dict[str, object],
) -> None:
    """The spawner is told of the job the dispatcher checked at GitHub, whatever else.

    (GitHub's published example payload itself names one repository in `repository` and
    another in the job URL, so a disagreement is not refused.)
    """
    job = parse_job(text(labels=[], url=JOB, **extra), supported_labels=SUPPORTED, api_url=GITHUB)

    assert (job.owner, job.repo) == ("octo-org", "octo-repo")
    assert (job.repository, job.job_id) == ("octo-org/octo-repo", 1291536064)


@pytest.mark.parametrize(
    "configured",
    ["https://GHE.example.com/api/v3", "https://ghe.example.com:443/api/v3"],
    ids=["upper-case host", "explicit default port"],
)
@pytest.mark.parametrize(
    "url",
    [
        "https://ghe.example.com/api/v3/repos/o/r/actions/jobs/5",
        "https://GHE.EXAMPLE.COM:443/api/v3/repos/o/r/actions/jobs/5",
    ],
    ids=["as GitHub writes it", "other spelling"],
)
def test_ghes_base_url_spellings_accept_the_same_job_urls_the_client_will_call(
    configured: str, url: str
) -> None:
    """The contract and the API client share one origin rule (github_api.same_origin)."""
    api_url = Settings.from_env(
        {
            "DISPATCHER_FLAVOURS": "small",
            "DISPATCHER_SPAWN_COMMAND": "true",
            "DISPATCHER_GITHUB_API_URL": configured,
        }
    ).api_url

    job = parse_job(text(labels=[], url=url), supported_labels=(), api_url=api_url)

    assert job.job_id == 5
    assert same_origin(job.url, api_url)
    assert same_origin(job.url, configured)


@pytest.mark.parametrize(
    ("url", "base", "same"),
    [
        ("https://api.github.com/x", "https://API.GitHub.com", True),
        ("https://api.github.com:443/x", "https://api.github.com", True),
        ("http://127.0.0.9:80/x", "http://127.0.0.9", True),
        ("https://api.github.com/x", "http://api.github.com", False),
        ("https://api.github.com:8443/x", "https://api.github.com", False),
        ("https://u@api.github.com/x", "https://api.github.com", False),
        ("https://api.github.com:99999/x", "https://api.github.com", False),
        ("https://api.github.com.evil/x", "https://api.github.com", False),
    ],
)
def test_same_origin_ignores_host_case_and_default_ports_only(
    url: str, base: str, same: bool
) -> None:
    assert same_origin(url, base) is same
