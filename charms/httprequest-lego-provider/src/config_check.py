"""The service's own configuration check, as the charm runs it in the workload container.

The program imports the service's validators (the environment reader, the git backend's
settings and the operator tools' settings (metrics port, janitor), the same code the service
and its janitor run at start) and exits 2 with the service's message on
standard error when they refuse; the charm then blocks with that message. The tests run this
very program against the service's source, so a change on either side fails CI.
"""

from __future__ import annotations

from twelve_factor.workload import PYTHON

PROGRAM = """\
import os
import sys

from api.operations import OperationsSettings
from django.core.exceptions import ImproperlyConfigured
from dns_backends.base import BackendConfigError
from dns_backends.git.settings import settings_from_env
from httprequest_lego_provider.environment import ProviderEnvironment

try:
    environment = ProviderEnvironment.from_env(os.environ)
    settings_from_env(os.environ, data_dir=environment.data_dir)
    OperationsSettings.from_env(os.environ)
except (ImproperlyConfigured, BackendConfigError) as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""

COMMAND = (PYTHON, "-c", PROGRAM)
