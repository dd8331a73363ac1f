"""A small 12-factor charm base on ``ops`` for Django and Flask workloads.

Shared by the charms in this folder through a ``lib/twelve_factor`` symlink (see README.md).
"""

from twelve_factor.charm import (
    AppConfig,
    DatabaseSpec,
    InvalidConfigError,
    TwelveFactorCharm,
)
from twelve_factor.workload import FLASK, Framework, WebserverConfig, WorkloadError, django

__all__ = [
    "FLASK",
    "AppConfig",
    "DatabaseSpec",
    "Framework",
    "InvalidConfigError",
    "TwelveFactorCharm",
    "WebserverConfig",
    "WorkloadError",
    "django",
]
