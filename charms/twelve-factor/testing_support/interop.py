"""The recorded relation data of the real charm libraries (``<repo>/../shared/interop``).

Those files are what the upstream libraries (data_interfaces, traefik's ingress,
prometheus_scrape, loki_push_api, grafana_dashboard) and their peer charms wrote, recorded in
``ops.testing``; the tests check our side of each relation against them. The folder sits beside
the repository (CI keeps a copy of ``shared/`` next to the clone); a missing file fails loudly.
"""

from __future__ import annotations

import json
from typing import Any

from ops import testing

from testing_support.paths import REPO_ROOT

INTEROP = REPO_ROOT.parent / "shared" / "interop"
# The model every fixture was recorded in.
MODEL = testing.Model(name="ci", uuid="4c1b2a3d-0000-4000-8000-00000000a002")


def fixture(name: str) -> dict[str, Any]:
    """One fixture, e.g. ``ingress/provider-traefik-lp21-path.json``."""
    path = INTEROP / name
    if not path.is_file():
        raise FileNotFoundError(f"interop fixture {path} is missing (shared/ beside the repo?)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def fixtures(interface: str, prefix: str) -> list[str]:
    """Names of the fixtures of one interface whose file name starts with ``prefix``."""
    folder = INTEROP / interface
    names = sorted(f"{interface}/{p.name}" for p in folder.glob(f"{prefix}*.json"))
    if not names:
        raise FileNotFoundError(f"no {prefix}* fixtures in {folder}")
    return names


def granted_secrets(data: dict[str, Any]) -> set[testing.Secret]:
    """The provider's secrets as this charm sees them: granted to it, not owned."""
    return {
        testing.Secret(id=s["id"], tracked_content=s["content"])
        for s in data["written"].get("secrets", [])
    }
