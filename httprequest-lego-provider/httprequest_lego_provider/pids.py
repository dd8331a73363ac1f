"""Whether a process still runs: for folders named after the process that owns them.

The metrics folder of each gunicorn server and the SSH session folders of each worker are
removed once their process is gone (a crash leaves them behind).
"""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True when a process ``pid`` exists; another user's counts, though we may not signal it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
