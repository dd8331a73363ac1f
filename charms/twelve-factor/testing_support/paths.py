"""Where the repository is, for the tests' reads of the services' files and the fixtures.

Normally derived from this package's place in the checkout. ``scripts/test-packed-charms`` runs
a charm's tests against an unpacked ``.charm`` with a copy of this package beside it (so the
source tree's ``twelve_factor`` cannot mask a base missing from the package) and names the
checkout in ``TWELVE_FACTOR_REPO_ROOT``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(
    os.environ.get("TWELVE_FACTOR_REPO_ROOT")
    or Path(__file__).resolve().parent.parent.parent.parent
)
CHARMS_DIR = REPO_ROOT / "charms"
