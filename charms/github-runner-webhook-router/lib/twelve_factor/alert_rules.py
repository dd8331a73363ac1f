"""Prometheus alert rules shipped with the charm, labelled as ``prometheus_scrape`` labels them.

Rule files are YAML (``groups: [{name, rules}]``). Each group is renamed
``<model>_<uuid8>_<app>_<group>_rules`` (dashes as underscores) and every rule gets the
``juju_*`` labels, so Prometheus can tell applications apart; the expressions are sent as
written (Prometheus' cos-tool adds the label matchers on its side).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from twelve_factor.topology import Topology

RULE_SUFFIXES = (".rule", ".rules")
GENERIC_RULES_DIR = Path(__file__).parent / "alert_rules"


def rule_files(directories: Iterable[Path]) -> list[Path]:
    """The rule files in the directories, in a stable order (missing directories are skipped)."""
    files: list[Path] = []
    for directory in directories:
        if directory.is_dir():
            files += sorted(p for p in directory.iterdir() if p.suffix in RULE_SUFFIXES)
    return files


def labelled_groups(text: str, topology: Topology) -> list[dict[str, Any]]:
    """The groups of one rule file, renamed and labelled for this application.

    Raises:
        ValueError: the file is not a ``groups:`` document.
    """
    document = yaml.safe_load(text)
    if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
        raise ValueError("an alert rule file must hold a 'groups' list")
    groups: list[dict[str, Any]] = []
    for group in document["groups"]:
        name = f"{topology.identifier}_{group['name']}_rules".replace("-", "_")
        rules = [
            {**rule, "labels": {**rule.get("labels", {}), **topology.rule_labels()}}
            for rule in group["rules"]
        ]
        groups.append({"name": name, "rules": rules})
    return groups


def alert_rules(directories: Iterable[Path], topology: Topology) -> str:
    """The ``alert_rules`` databag value: every group of every rule file, JSON-encoded."""
    groups: list[dict[str, Any]] = []
    for path in rule_files(directories):
        groups += labelled_groups(path.read_text(), topology)
    return json.dumps({"groups": groups})
