"""The service's own configuration check, as the charm runs it in the workload container.

The program builds the service's settings from the environment with the service's own code
(``Settings.from_env``, what the app runs at start; the dispatcher's too when it is
configured) and exits 2 with the service's message on
standard error when it refuses; the charm then blocks with that message. The tests run this
very program against the service's source, so a change on either side fails CI.
"""

from __future__ import annotations

from twelve_factor.workload import PYTHON

PROGRAM = """\
import os
import sys

from webhook_router.errors import ConfigError
from webhook_router.settings import Settings

try:
    Settings.from_env(os.environ)
except ConfigError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
if os.environ.get("DISPATCHER_SPAWN_COMMAND", "").strip():
    from runner_dispatcher.errors import ConfigError as DispatcherConfigError
    from runner_dispatcher.settings import Settings as DispatcherSettings

    try:
        DispatcherSettings.from_env(os.environ)
    except DispatcherConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
"""

COMMAND = (PYTHON, "-c", PROGRAM)
