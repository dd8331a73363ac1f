"""One JSON log line per routing decision: who, what, where it went; never the body."""

from __future__ import annotations

import json
import logging

from webhook_router.payload import Job
from webhook_router.routing import Decision

# Its own logger, so operators can route or silence decision lines apart from the rest.
decisions = logging.getLogger("webhook_router.decisions")
# Lines show at most this many labels of at most this length (labels come from the body).
LOGGED_LABELS = 20
LOGGED_LABEL_LENGTH = 100


def log_decision(
    job: Job, delivery_id: str | None, decision: Decision, outcome: str, reason: str
) -> None:
    """One JSON line per routing decision: identities, labels, flavour, outcome; no body."""
    if not decisions.isEnabledFor(logging.INFO):
        return
    labels = [label[:LOGGED_LABEL_LENGTH] for label in job.labels[:LOGGED_LABELS]]
    routed = [label[:LOGGED_LABEL_LENGTH] for label in decision.labels[:LOGGED_LABELS]]
    decisions.info(
        "%s",
        json.dumps(
            {
                "event": "routing_decision",
                "delivery": delivery_id,
                "action": job.action[:LOGGED_LABEL_LENGTH],
                "job_id": job.job_id,
                "run_id": job.run_id,
                "run_attempt": job.run_attempt,
                "repository": job.repository,
                "labels": labels,
                "routed_labels": routed,
                "flavour": decision.flavour,
                "outcome": outcome,
                "reason": reason or None,
            }
        ),
    )
