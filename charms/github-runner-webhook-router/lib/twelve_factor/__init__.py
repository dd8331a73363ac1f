"""A small 12-factor charm base on ``ops`` for Django and Flask workloads.

Each charm carries a copy in its ``lib/twelve_factor`` (scripts/sync-charm-libs; see README.md).
"""

from twelve_factor.charm import (
    AppConfig,
    DatabaseSpec,
    InvalidConfigError,
    TwelveFactorCharm,
)
from twelve_factor.workload import (
    FLASK,
    Framework,
    WebserverConfig,
    Worker,
    WorkloadError,
    django,
)

__all__ = [
    "FLASK",
    "AppConfig",
    "DatabaseSpec",
    "Framework",
    "InvalidConfigError",
    "TwelveFactorCharm",
    "WebserverConfig",
    "Worker",
    "WorkloadError",
    "django",
]
