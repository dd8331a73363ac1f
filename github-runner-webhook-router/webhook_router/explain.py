"""Explain a routing decision from the live configuration: `python -m webhook_router.explain`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from webhook_router.errors import ConfigError, RouterError
from webhook_router.payload import FORM, JSON, parse_job
from webhook_router.routing import NO_FLAVOUR_HAS_ALL, UNKNOWN_LABEL, Decision, RoutingTable
from webhook_router.settings import (
    allowed_repositories_from_env,
    repository_allowed,
    routing_from_env,
)

EXIT_EXPLAINED = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Explanation:
    """A decision with the words that justify it.

    Attributes:
        labels: the labels as given (or as the payload carried them).
        decision: what `RoutingTable.decide` chose: the one routing implementation.
        rule: which rule chose the flavour, or why none did, in a sentence.
        repository: the payload's repository, when a payload was given.
        repository_allowed: whether FLASK_ALLOWED_REPOSITORIES lets it through (None: no payload).
        action: the payload's action, when a payload was given.
    """

    labels: tuple[str, ...]
    decision: Decision
    rule: str
    repository: str | None = None
    repository_allowed: bool | None = None
    action: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON form (`--json`), for scripts and the charm action."""
        return {
            "labels": list(self.labels),
            "routed_labels": list(self.decision.labels),
            "flavour": self.decision.flavour,
            "position": self.decision.position,
            "reason": self.decision.reason,
            "rule": self.rule,
            "repository": self.repository,
            "repository_allowed": self.repository_allowed,
            "action": self.action,
        }

    def as_text(self) -> str:
        """The human form: one `name: value` line each."""
        routed = ", ".join(self.decision.labels) or "(none)"
        lines = [
            f"labels: {', '.join(self.labels) or '(none)'}",
            f"routed on: {routed}",
            f"flavour: {self.decision.flavour or '(none: answered 200, not queued)'}",
            f"rule: {self.rule}",
        ]
        if self.repository is not None:
            allowed = "allowed" if self.repository_allowed else "NOT allowed (answered 403)"
            lines.append(f"repository: {self.repository} ({allowed})")
        if self.action is not None and self.action != "queued":
            lines.append(f"action: {self.action} (only queued jobs are published to the flavour)")
        return "\n".join(lines)


def explain(routing: RoutingTable, labels: Sequence[str]) -> Explanation:
    """Route `labels` with the table and say why it chose what it chose."""
    decision = routing.decide(labels)
    return Explanation(tuple(labels), decision, _rule(routing, decision))


def _rule(routing: RoutingTable, decision: Decision) -> str:
    removed = ", ".join(sorted(routing.default_labels)) or "none"
    if decision.flavour is not None and decision.position is None:
        return (
            f"no labels left once the default labels ({removed}) are removed:"
            f" the default flavour {decision.flavour}"
        )
    if decision.flavour is not None:
        flavour = routing.flavours[(decision.position or 1) - 1]
        return (
            f"item {decision.position} of FLASK_FLAVOURS, {flavour.name}:"
            f" [{', '.join(sorted(flavour.labels))}], is the first that has every routed label"
        )
    wanted = set(decision.labels)
    if decision.reason == UNKNOWN_LABEL:
        served = set().union(*(flavour.labels for flavour in routing.flavours))
        return f"{UNKNOWN_LABEL}: no flavour lists {', '.join(sorted(wanted - served))}"
    lacking = "; ".join(
        f"{flavour.name} lacks {', '.join(sorted(wanted - flavour.labels))}"
        for flavour in routing.flavours
    )
    return f"{NO_FLAVOUR_HAS_ALL}: every label is some flavour's, none has all: {lacking}"


def explain_payload(routing: RoutingTable, allowed: frozenset[str], body: bytes) -> Explanation:
    """Explain a stored delivery body (JSON, or the form GitHub sends with `payload=`).

    Raises:
        RouterError: the body is not a workflow_job payload (the router would answer 400).
    """
    job = parse_job(body, FORM if body.lstrip().startswith(b"payload=") else JSON)
    base = explain(routing, job.labels)
    return Explanation(
        base.labels,
        base.decision,
        base.rule,
        repository=job.repository,
        repository_allowed=repository_allowed(allowed, job.repository),
        action=job.action,
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse arguments, read the routing configuration from the environment, print.

    Returns:
        0 explained (a flavour or not), 1 the configuration is invalid, 2 bad arguments or an
        unreadable payload.
    """
    parser = argparse.ArgumentParser(
        prog="python -m webhook_router.explain",
        description="Say which flavour a job goes to under the configuration in the environment,"
        " by which rule, or why none.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="the job's runs-on labels, comma-separated")
    source.add_argument(
        "--payload", type=Path, help="a stored workflow_job delivery body; '-' reads stdin"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        routing = routing_from_env(env)
        allowed = allowed_repositories_from_env(env)
    except ConfigError as exc:
        print(f"configuration error: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    if args.labels is not None:
        result = explain(
            routing, [label.strip() for label in args.labels.split(",") if label.strip()]
        )
    else:
        try:
            body = (
                sys.stdin.buffer.read() if str(args.payload) == "-" else args.payload.read_bytes()
            )
            result = explain_payload(routing, allowed, body)
        except OSError as exc:
            print(f"cannot read {args.payload}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        except RouterError as exc:
            print(f"not a workflow_job payload: {exc.message}", file=sys.stderr)
            return EXIT_USAGE
    print(json.dumps(result.as_dict()) if args.json else result.as_text())
    return EXIT_EXPLAINED


if __name__ == "__main__":
    sys.exit(main())
