"""Ask GitHub to redeliver failed `workflow_job` `queued` deliveries of a webhook.

Run as `python -m webhook_router.redeliver --github-path OWNER/REPO|ORG --webhook-id ID
--since SECONDS`, with either GITHUB_TOKEN or the GitHub App trio GITHUB_APP_CLIENT_ID,
GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY in the environment. Prints
`{"redelivered": N}`. Exit codes: 0 done, 1 bad arguments or credentials, 2 GitHub API failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import requests

from webhook_router.github_api import (
    DEFAULT_API_URL,
    ApiError,
    Auth,
    CredentialsError,
    GitHubClient,
    TokenSource,
    is_api_url,
    json_document,
    required_credentials,
    same_origin,
)

EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 1
EXIT_API_FAILURE = 2
MAX_PAGES = 1000
_PATH = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?")


class ArgumentsError(CredentialsError):
    """The command line is wrong (bad credentials raise its parent, CredentialsError)."""


@dataclass(frozen=True)
class Options:
    """Validated command line and environment."""

    github_path: str
    webhook_id: int
    since_seconds: int
    api_url: str
    auth: Auth


@dataclass(frozen=True)
class Delivery:
    """One entry of a webhook's delivery log."""

    id: int
    guid: str
    delivered_at: datetime
    status: str
    event: str
    action: str | None


def select_for_redelivery(deliveries: Sequence[Delivery], cutoff: datetime) -> list[Delivery]:
    """Choose the deliveries to redeliver: one per failed queued workflow_job guid.

    A guid with any OK delivery (the original or an earlier redelivery) needs nothing; a guid
    with several failed deliveries is redelivered once, from its newest delivery.

    Args:
        deliveries: the delivery log, newest first, as GitHub lists it.
        cutoff: deliveries before this instant are left alone.

    Returns:
        The deliveries to redeliver.
    """
    delivered = {item.guid for item in deliveries if item.status == "OK"}
    chosen: dict[str, Delivery] = {}
    for item in deliveries:
        if (
            item.delivered_at >= cutoff
            and item.event == "workflow_job"
            and item.action == "queued"
            and item.guid not in delivered
        ):
            chosen.setdefault(item.guid, item)
    return list(chosen.values())


class GitHub:
    """The three REST calls the command needs, on the shared authenticated client."""

    def __init__(self, options: Options, session: requests.Session) -> None:
        self._api = options.api_url.rstrip("/")
        self._client = GitHubClient(self._api, TokenSource(self._api, options.auth), session)
        kind = "orgs" if "/" not in options.github_path else "repos"
        self._hook = f"{self._api}/{kind}/{options.github_path}/hooks/{options.webhook_id}"

    def deliveries(self, cutoff: datetime) -> Iterator[Delivery]:
        """List deliveries newest first, following the Link header until older than cutoff."""
        url: str | None = f"{self._hook}/deliveries?per_page=100"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._client.call("GET", url)
            page = [_delivery(item) for item in json_document(response, list)]
            yield from page
            if not page or page[-1].delivered_at < cutoff:
                return
            url = self._next_page(response)

    def redeliver(self, delivery: Delivery) -> None:
        """Ask for a new attempt of a delivery (GitHub answers 202)."""
        self._client.call("POST", f"{self._hook}/deliveries/{delivery.id}/attempts")

    def _next_page(self, response: requests.Response) -> str | None:
        url = response.links.get("next", {}).get("url")
        if url is None:
            return None
        # The token goes wherever the link points: only follow links to the API's own origin.
        if not same_origin(str(url), self._api):
            raise ApiError("GitHub returned a pagination link to another host")
        return str(url)


def _delivery(item: object) -> Delivery:
    if not isinstance(item, dict):
        raise ApiError("GitHub returned a malformed delivery")
    try:
        return Delivery(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00")),
            status=str(item["status"]),
            event=str(item["event"]),
            action=None if item.get("action") is None else str(item["action"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError("GitHub returned a malformed delivery") from exc


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors with this command's exit code instead of 2."""

    def error(self, message: str) -> NoReturn:
        raise ArgumentsError(message)


def parse_options(argv: Sequence[str], environ: Mapping[str, str]) -> Options:
    """Validate the command line and the credentials.

    Raises:
        ArgumentsError: anything is missing, malformed, or both kinds of credentials are set.
    """
    parser = _Parser(prog="python -m webhook_router.redeliver", description=__doc__)
    parser.add_argument("--github-path", required=True, help="OWNER/REPO or ORG")
    parser.add_argument("--webhook-id", required=True, type=int)
    parser.add_argument("--since", required=True, type=int, help="seconds back to look")
    parser.add_argument("--api-url", default=environ.get("GITHUB_API_URL") or DEFAULT_API_URL)
    args = parser.parse_args(argv)
    if not _PATH.fullmatch(args.github_path) or {".", ".."} & set(args.github_path.split("/")):
        raise ArgumentsError("--github-path must be OWNER/REPO or ORG")
    if args.webhook_id <= 0:
        raise ArgumentsError("--webhook-id must be a positive integer")
    if args.since < 0:
        raise ArgumentsError("--since must be zero or more seconds")
    if not is_api_url(args.api_url):
        raise ArgumentsError("--api-url must be an http(s) URL such as https://api.github.com")
    return Options(
        github_path=args.github_path,
        webhook_id=args.webhook_id,
        since_seconds=args.since,
        api_url=args.api_url,
        auth=required_credentials(environ),
    )


def redeliver_failed(options: Options, session: requests.Session) -> int:
    """Redeliver what `select_for_redelivery` picks and return how many were redelivered."""
    github = GitHub(options, session)
    cutoff = datetime.now(UTC) - timedelta(seconds=options.since_seconds)
    chosen = select_for_redelivery(list(github.deliveries(cutoff)), cutoff)
    for delivery in chosen:
        github.redeliver(delivery)
    return len(chosen)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command; returns the exit code."""
    try:
        options = parse_options(
            sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ
        )
        with requests.Session() as session:
            count = redeliver_failed(options, session)
    except CredentialsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except ApiError as exc:
        print(f"error: GitHub API failure: {exc.message}", file=sys.stderr)
        return EXIT_API_FAILURE
    print(json.dumps({"redelivered": count}))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
