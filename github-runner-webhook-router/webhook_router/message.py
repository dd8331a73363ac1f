"""The queued message: the contract with consumers reading `SimpleQueue(<flavour>)`."""

from __future__ import annotations

import json

from webhook_router.payload import Job

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"


def job_text(job: Job) -> str:
    """The JSON text consumers parse: labels (list), status and url.

    Labels are sent as GitHub gave them (the consumer compares them case-insensitively with the
    labels its runners support); status is the webhook action, always `queued` here.
    """
    return json.dumps({"labels": list(job.labels), "status": job.action, "url": job.url})


def encode_body(job: Job) -> bytes:
    """The wire body: the JSON text serialised as a JSON string.

    This is byte for byte what `SimpleQueue.put(job_text)` produces with kombu's default json
    serializer, so a consumer's `message.payload` is the JSON *text*, as the reference consumer
    expects. Encoding it here skips kombu's serializer lookup on every publish.
    """
    return json.dumps(job_text(job)).encode(CONTENT_ENCODING)
