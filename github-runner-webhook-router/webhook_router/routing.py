"""Routing table: which flavour (queue) a job's labels go to."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from webhook_router.errors import ConfigError

# Flavour names become queue (and, on RabbitMQ, exchange) names and file names on the embedded
# broker, and equal the consumer's runner application name: keep them to a safe alphabet.
_FLAVOUR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Flavour:
    """One routing table entry: a queue name and the labels (lower case) it serves."""

    name: str
    labels: frozenset[str]


# Why no flavour serves a job: a small fixed set, fit for a metric label.
UNKNOWN_LABEL = "unknown_label"
NO_FLAVOUR_HAS_ALL = "no_flavour_has_all_labels"
UNMATCHED_REASONS = (UNKNOWN_LABEL, NO_FLAVOUR_HAS_ALL)


@dataclass(frozen=True)
class Decision:
    """A routing decision and why it was taken.

    Attributes:
        labels: the label set routed on, sorted: lowercased, duplicates dropped, default
            self-hosted labels removed. This is what the queued message carries (SPEC 2.2).
        flavour: the flavour chosen, or None.
        position: the chosen flavour's item number in the routing table (1-based); None for
            the default flavour or no match.
        reason: why no flavour matched (one of UNMATCHED_REASONS); None when one did.
    """

    labels: tuple[str, ...]
    flavour: str | None
    position: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RoutingTable:
    """Ordered flavours plus the flavour for jobs that ask for default labels only."""

    flavours: tuple[Flavour, ...]
    default_flavour: str
    default_labels: frozenset[str]

    def decide(self, labels: Iterable[str]) -> Decision:
        """Choose the flavour for a job's labels, saying which rule chose it.

        Labels compare case-insensitively. The default self-hosted labels are dropped first;
        nothing left means the default flavour. Otherwise the first flavour (in configuration
        order) whose labels include every remaining label wins.

        Args:
            labels: the job's `runs-on` labels as GitHub sent them.

        Returns:
            The decision; its flavour is None when no flavour serves these labels.
        """
        wanted = {label.lower() for label in labels} - self.default_labels
        routed = tuple(sorted(wanted))
        if not wanted:
            return Decision(routed, self.default_flavour)
        for position, flavour in enumerate(self.flavours, start=1):
            if wanted <= flavour.labels:
                return Decision(routed, flavour.name, position)
        served = set().union(*(flavour.labels for flavour in self.flavours))
        reason = UNKNOWN_LABEL if wanted - served else NO_FLAVOUR_HAS_ALL
        return Decision(routed, None, reason=reason)

    def route(self, labels: Iterable[str]) -> str | None:
        """The flavour `decide` chooses for these labels, or None."""
        return self.decide(labels).flavour

    @property
    def names(self) -> tuple[str, ...]:
        """Flavour names in configuration order."""
        return tuple(flavour.name for flavour in self.flavours)


def parse_flavours(text: str, variable: str) -> tuple[Flavour, ...]:
    """Parse the YAML routing table `- <flavour>: [label, ...]`.

    Args:
        text: the YAML document.
        variable: the environment variable it came from, named in error messages.

    Returns:
        The flavours in order.

    Raises:
        ConfigError: the YAML is invalid or not a non-empty list of single-key maps of label
            lists, or a flavour appears twice.
    """
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{variable}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(document, list) or not document:
        raise ConfigError(f"{variable}: must be a non-empty YAML list like '- small: [x64]'")
    flavours: list[Flavour] = []
    for position, item in enumerate(document, start=1):
        flavours.append(_parse_item(item, position, variable))
    names = [flavour.name for flavour in flavours]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{variable}: flavour listed more than once: {', '.join(duplicates)}")
    return tuple(flavours)


def _parse_item(item: object, position: int, variable: str) -> Flavour:
    """Validate one `<flavour>: [labels]` item of the routing table."""
    where = f"{variable}: item {position}"
    if not isinstance(item, dict) or len(item) != 1:
        raise ConfigError(f"{where} must be a map with exactly one key (the flavour name)")
    ((name, labels),) = item.items()
    if not isinstance(name, str) or not _FLAVOUR_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: flavour name must be letters, digits, '.', '_' or '-' (at most 100)"
        )
    if not isinstance(labels, list) or not all(
        isinstance(label, str) and label.strip() for label in labels
    ):
        raise ConfigError(f"{where}: labels of {name!r} must be a list of non-empty strings")
    return Flavour(name=name, labels=frozenset(label.strip().lower() for label in labels))


def parse_label_list(text: str) -> frozenset[str]:
    """Parse a comma-separated label list into lower-case labels, ignoring blanks."""
    return frozenset(label.strip().lower() for label in text.split(",") if label.strip())
