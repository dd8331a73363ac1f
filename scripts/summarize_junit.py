"""Add up the JUnit reports of every suite and print one closing line.

Exits non-zero when any test failed or errored, or when no test ran at all.
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.etree import ElementTree


def main(paths: list[str]) -> int:
    """Print per-suite and total counts; return the process exit code."""
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for path in paths:
        if not Path(path).exists():
            print(f"{path}: missing (the suite did not run)")
            total["errors"] += 1
            continue
        root = ElementTree.parse(path).getroot()  # noqa: S314 - our own pytest output
        suites = [root] if root.tag == "testsuite" else list(root)
        counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in total}
        for key, value in counts.items():
            total[key] += value
        print(f"{Path(path).stem}: {counts}")
    failed = total["failures"] + total["errors"]
    passed = total["tests"] - failed - total["skipped"]
    print(f"{passed} passed, {failed} failed, {total['skipped']} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
