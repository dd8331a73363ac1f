"""The janitor: a worker that withdraws the TXT records no client cleaned up.

A client that crashes between present and cleanup leaves its record in the zone forever;
``manage.py janitor --every`` withdraws records older than ``DJANGO_JANITOR_MAX_AGE`` through
the same backend path as a cleanup (audited and pushed like one), every
``DJANGO_JANITOR_INTERVAL`` seconds. Each record is withdrawn under its row lock, so every unit
can run one.
"""

from __future__ import annotations

from twelve_factor import Worker
from twelve_factor.workload import PYTHON

SERVICE = "janitor-worker"
COMMAND = (PYTHON, "manage.py", "janitor", "--every")
MAX_AGE = "DJANGO_JANITOR_MAX_AGE"


def worker(max_age: int) -> Worker:
    """The ``janitor-worker`` service: the app's environment and the age of a stale record."""
    return Worker(name=SERVICE, command=COMMAND, environment={MAX_AGE: str(max_age)})
