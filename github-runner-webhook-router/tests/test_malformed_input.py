"""Every malformed request gets a short 4xx, never a 500, never an echo of the body."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from flask import Flask
from helpers import FORM, JSON, SECRET, AppFactory, Poster, Reader, dispatcher, job_body
from webhook_router.signature import sign

MARKER = "ECHO-CANARY"


def valid_document() -> dict[str, object]:
    document: dict[str, object] = json.loads(job_body(["x64"]))
    return document


def with_job(**fields: object) -> bytes:
    document = valid_document()
    job = dict(document["workflow_job"])  # type: ignore[call-overload]
    job.update(fields)
    document["workflow_job"] = job
    return json.dumps(document).encode()


def without(key: str) -> bytes:
    document = valid_document()
    job = dict(document["workflow_job"])  # type: ignore[call-overload]
    job.pop(key)
    document["workflow_job"] = job
    return json.dumps(document).encode()


def with_repository(repository: object) -> bytes:
    document = valid_document()
    document["repository"] = repository
    return json.dumps(document).encode()


BAD_BODIES = {
    "not-json": b"ECHO-CANARY this is not json",
    "empty": b"",
    "json-null": b"null",
    "json-number": b"42",
    "json-string": b'"ECHO-CANARY"',
    "json-list": b'[{"action": "queued"}]',
    "json-true": b"true",
    "bad-utf8": b'{"action": "\xff\xfe"}',
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
    "action-missing": json.dumps({"workflow_job": {"labels": [], "url": "https://x"}}).encode(),
    "action-number": json.dumps({"action": 1, "workflow_job": {}}).encode(),
    "workflow-job-missing": json.dumps({"action": "queued"}).encode(),
    "workflow-job-list": json.dumps({"action": "queued", "workflow_job": []}).encode(),
    "labels-null": with_job(labels=None),
    "labels-number": with_job(labels=5),
    "labels-string": with_job(labels="x64"),
    "labels-with-number-and-null": with_job(labels=[1, None]),
    "labels-missing": without("labels"),
    "url-missing": without("url"),
    "url-null": with_job(url=None),
    "url-number": with_job(url=12),
    "url-not-http": with_job(url="file:///etc/passwd"),
    "url-no-host": with_job(url="https://"),
    "id-missing": without("id"),
    "id-true": with_job(id=True),
    "id-zero": with_job(id=0),
    "id-string": with_job(id="289782451"),
    "id-huge": with_job(id=2**64),
    "run-id-missing": without("run_id"),
    "run-attempt-zero": with_job(run_attempt=0),
    "run-attempt-float": with_job(run_attempt=1.5),
    "repository-missing": with_repository(None),
    "repository-list": with_repository([]),
    "full-name-no-slash": with_repository({"full_name": "ECHO-CANARY"}),
    "full-name-spaces": with_repository({"full_name": "a b/c"}),
    "full-name-three-parts": with_repository({"full_name": "a/b/c"}),
}


@pytest.fixture
def app(make_app: AppFactory, flavour: str) -> Flask:
    return make_app(FLASK_FLAVOURS=f"- {flavour}: [x64]", FLASK_WEBHOOK_SECRET=SECRET)


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_json_payload_gets_400_without_echo_and_nothing_published(
    app: Flask, post: Poster, read_queue: Reader, flavour: str, body: bytes
) -> None:
    response = post(app.test_client(), body)

    assert response.status_code == 400
    assert MARKER not in response.text
    assert len(response.text) < 100
    assert read_queue(app, flavour) == []


FORM_BODIES = {
    "no-payload-field": urlencode({"other": "1"}).encode(),
    "two-payload-fields": b"payload=%7B%7D&payload=%7B%7D",
    "payload-not-json": urlencode({"payload": "ECHO-CANARY"}).encode(),
    "payload-json-list": urlencode({"payload": "[]"}).encode(),
    "non-ascii-form": "payload=\u00e9".encode(),
    "bad-percent-utf8": b"payload=%ff%fe",
}


@pytest.mark.parametrize("body", FORM_BODIES.values(), ids=FORM_BODIES.keys())
def test_malformed_form_payload_gets_400_without_echo(
    app: Flask, post: Poster, body: bytes
) -> None:
    response = post(app.test_client(), body, content_type=FORM)

    assert response.status_code == 400
    assert MARKER not in response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_other_content_types_get_415(app: Flask, post: Poster, content_type: str) -> None:
    response = post(app.test_client(), job_body(["x64"]), content_type=content_type)

    assert response.status_code == 415


def test_missing_signature_gets_403(app: Flask, post: Poster) -> None:
    response = post(app.test_client(), job_body(["x64"]), secret=None)

    assert response.status_code == 403
    assert response.text == "Missing X-Hub-Signature-256 header\n"


def test_signature_with_other_secret_gets_403(
    app: Flask, post: Poster, read_queue: Reader, flavour: str
) -> None:
    response = post(app.test_client(), job_body(["x64"]), secret="not the secret")

    assert response.status_code == 403
    assert response.text == "Signature does not match the body\n"
    assert read_queue(app, flavour) == []


@pytest.mark.parametrize(
    "header",
    ["sha256=\u00e9\u00e9", "sha256=" + "\u00ff" * 64, "\u00e9"],
    ids=["latin1", "latin1-64", "single"],
)
def test_non_ascii_signature_header_gets_403_not_500(
    app: Flask, post: Poster, header: str
) -> None:
    body = job_body(["x64"])
    client = app.test_client()
    response = client.post(
        "/webhook",
        data=body,
        headers={
            "Content-Type": JSON,
            "X-GitHub-Event": "workflow_job",
            "X-Hub-Signature-256": header.encode("latin-1").decode("latin-1"),
        },
    )

    assert response.status_code == 403


def test_missing_event_header_gets_400_with_its_own_message(app: Flask, post: Poster) -> None:
    response = post(app.test_client(), job_body(["x64"]), event=None)

    assert response.status_code == 400
    assert response.text == "Missing X-GitHub-Event header\n"


def test_unsupported_event_gets_400_with_its_own_message(app: Flask, post: Poster) -> None:
    response = post(app.test_client(), job_body(["x64"]), event="push")

    assert response.status_code == 400
    assert response.text.startswith("Unsupported event")


def test_invalid_delivery_header_gets_400(app: Flask, post: Poster) -> None:
    response = post(app.test_client(), job_body(["x64"]), delivery="x" * 500)

    assert response.status_code == 400


def test_body_over_the_limit_gets_413_before_signature_check(
    make_app: AppFactory, post: Poster, flavour: str
) -> None:
    app = make_app(
        FLASK_FLAVOURS=f"- {flavour}: [x64]",
        FLASK_WEBHOOK_SECRET=SECRET,
        FLASK_MAX_BODY_BYTES="2048",
    )
    body = job_body(["x64"]) + b" " * 4096

    response = post(app.test_client(), body, secret="wrong")

    assert response.status_code == 413
    assert response.text == "Body too large\n"


def test_rejections_are_counted_by_reason(app: Flask, post: Poster) -> None:
    client = app.test_client()
    post(client, b"null")
    post(client, job_body(["x64"]), secret="wrong")
    post(client, job_body(["x64"]), secret=None)

    registry = dispatcher(app).metrics.registry
    for reason in ("payload_invalid", "signature_mismatch", "signature_missing"):
        labels = {"outcome": "rejected", "flavour": "", "reason": reason}
        assert registry.get_sample_value("webhook_router_webhooks_total", labels) == 1


def test_signature_is_checked_over_the_exact_bytes_sent(app: Flask) -> None:
    """Re-serialising the JSON would change the bytes: the signature must cover raw bytes."""
    body = job_body(["x64"]).replace(b", ", b",  ")
    response = app.test_client().post(
        "/webhook",
        data=body,
        headers={
            "Content-Type": JSON,
            "X-GitHub-Event": "workflow_job",
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
        },
    )

    assert response.status_code == 200
