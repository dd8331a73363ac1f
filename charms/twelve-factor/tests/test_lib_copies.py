"""Each charm carries the base as real files in lib/, identical to the source (issue 10)."""

from __future__ import annotations

import subprocess
import sys

from testing_support.paths import REPO_ROOT

SYNC = REPO_ROOT / "scripts" / "sync-charm-libs"


def test_every_charm_lib_copy_matches_the_source():
    """Charmcraft drops links leaving the charm folder, so lib/ must hold real, current files."""
    result = subprocess.run(
        [sys.executable, str(SYNC), "--check"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr


def test_no_charm_holds_a_link_that_charmcraft_would_drop():
    """A symlink is packed by charmcraft only when its target is inside the charm's folder."""
    leaving = []
    for charm in sorted((REPO_ROOT / "charms").glob("*/charmcraft.yaml")):
        folder = charm.parent.resolve()
        for path in folder.rglob("*"):
            if path.is_symlink() and folder not in path.resolve().parents:
                leaving.append(str(path.relative_to(REPO_ROOT)))

    assert leaving == []
