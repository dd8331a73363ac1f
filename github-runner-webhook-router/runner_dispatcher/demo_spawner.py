"""A demo spawner that starts nothing: it logs the job it was given and succeeds.

`DISPATCHER_SPAWN_COMMAND="python -m runner_dispatcher.demo_spawner"` shows the spawner
interface end to end without any cloud: the job arrives as DISPATCHER_* variables and as JSON
on stdin (where the JIT configuration would be); exit status 0 reports a started runner.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    """Log one line to stderr and succeed."""
    request = json.load(sys.stdin)
    print(
        f"demo spawner: would start runner {os.environ.get('DISPATCHER_RUNNER_NAME')} "
        f"for job {os.environ.get('DISPATCHER_JOB_URL')} labels "
        f"{','.join(request['runner_labels'])} "
        f"(JIT config {'given' if request.get('encoded_jit_config') else 'not given'})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
