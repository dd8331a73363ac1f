"""Where the tests find their PostgreSQL server: one answer for the settings and the servers."""

from __future__ import annotations

import os
from pathlib import Path

# Written by scripts/services: a role of the tests' own, with a generated password.
URL_FILE = Path(__file__).resolve().parents[2] / ".local" / "test" / "postgresql-url"


def postgresql_url_for_tests() -> str:
    """``TEST_POSTGRESQL_URL`` if exported, else the URL scripts/services created.

    Raises:
        RuntimeError: neither is there; the message says how to get one.
    """
    url = os.environ.get("TEST_POSTGRESQL_URL") or (
        URL_FILE.read_text().strip() if URL_FILE.is_file() else ""
    )
    if not url:
        raise RuntimeError(
            f"no PostgreSQL for the tests: run scripts/services (it writes {URL_FILE}) "
            "or export TEST_POSTGRESQL_URL=postgresql://user:password@127.0.0.1:5432/postgres"
        )
    return url
