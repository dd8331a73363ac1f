"""Failed logins are throttled per username and per client address, shared through the database.

Every password login (basic auth, the JWT token endpoint, the Django admin) goes through
:class:`api.authentication.GeneratedTokenAwareModelBackend`, which calls :func:`check` before a
slow password check and :func:`record_failure` after a wrong password. After
``DJANGO_LOGIN_FAILURES_PER_USERNAME`` failures for one username, or
``DJANGO_LOGIN_FAILURES_PER_ADDRESS`` from one client address, within
``DJANGO_LOGIN_FAILURE_WINDOW`` seconds, further attempts are answered 429 with ``Retry-After``
until that window ends, without checking the password (so a locked-out flood costs one indexed
read per attempt, not a slow hash).

The counters live in the database (``FailedLoginCounter``), so every worker of every unit sees
the same ones. A correct *generated* password is accepted before any of this: 256 bits cannot be
guessed, so throttling it would protect nothing and would let anyone lock lego's machine
accounts out by guessing at their names; valid machine logins therefore cost no throttle query
at all, however large the flood. A correct *human* password is refused while its username or
address is locked out: a lockout that let the right password through would tell a guesser when
they found it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from httprequest_lego_provider.environment import LoginThrottleLimits
from rest_framework import exceptions

from api.client_address import client_address
from api.metrics import count_authentication_failure
from api.models import FailedLoginCounter

logger = logging.getLogger(__name__)

# An IPv6 client usually holds a whole /64: counting single addresses would let it rotate.
IPV6_PREFIX = 64
LOGGED_USERNAME_CHARS = 150


class LoginThrottled(exceptions.Throttled):
    """429: too many failed logins for this username or client address."""

    default_detail = "too many failed logins for this username or client address."
    extra_detail_singular = "Retry in {wait} second."
    extra_detail_plural = "Retry in {wait} seconds."
    default_code = "login_throttled"

    def __init__(self, wait: int) -> None:
        super().__init__(wait=wait)
        self.retry_after = wait


@dataclass(frozen=True)
class _Scope:
    """One thing failures are counted for: a username or a client address."""

    name: str
    value: str
    limit: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.name}:{digest}"

    def shown(self) -> str:
        """The value for the log: escaped, and cut to a username's length."""
        return repr(self.value[:LOGGED_USERNAME_CHARS])


def limits() -> LoginThrottleLimits:
    """The configured limits (settings.LOGIN_THROTTLE, read from the environment once)."""
    configured: LoginThrottleLimits = settings.LOGIN_THROTTLE
    return configured


def counted_address(meta: Mapping[str, Any], proxy_hops: int | None = None) -> str | None:
    """The address failures are counted against, or None when there is none at all.

    :func:`api.client_address.client_address` (``DJANGO_PROXY_HOPS``; ``proxy_hops``
    overrides it), except that an unknown forwarded address counts against the TCP peer (a
    client writing garbage still gets a scope). IPv6 addresses count by /64.
    """
    address = client_address(meta, proxy_hops)
    if address is None:
        address = client_address(meta, proxy_hops=0)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def _scopes(username: str, request: Any) -> Iterator[_Scope]:
    configured = limits()
    if configured.per_username:
        yield _Scope("user", username, configured.per_username)
    meta = getattr(request, "META", None) or {}
    address = counted_address(meta)
    if configured.per_address and address is not None:
        yield _Scope("addr", address, configured.per_address)


def _window_end(counter: FailedLoginCounter) -> datetime:
    return counter.window_started + timedelta(seconds=limits().window_seconds)


def check(username: str, request: Any) -> None:
    """Refuse the attempt if its username or address is locked out (one indexed read).

    Raises:
        LoginThrottled: with the seconds until the longest of the lockouts ends.
    """
    scopes = {scope.key: scope for scope in _scopes(username, request)}
    if not scopes:
        return
    now = timezone.now()
    waits = [
        (_window_end(counter) - now).total_seconds()
        for counter in FailedLoginCounter.objects.filter(key__in=scopes)
        if counter.failures >= scopes[counter.key].limit and _window_end(counter) > now
    ]
    if waits:
        count_authentication_failure("throttled")
        raise LoginThrottled(wait=max(1, math.ceil(max(waits))))


def record_failure(username: str, request: Any) -> None:
    """Count a wrong password against its username and its address; log each new lockout."""
    now = timezone.now()
    for scope in _scopes(username, request):
        failures, new_key, window_end = _count(scope.key, now)
        if new_key:
            _forget_ended_windows(now)
        if failures == scope.limit:
            logger.warning(
                "login lockout: %d failed logins for %s %s; refused for %d s",
                failures,
                "username" if scope.name == "user" else "client address",
                scope.shown(),
                math.ceil((window_end - now).total_seconds()),
            )


@transaction.atomic
def _count(key: str, now: datetime) -> tuple[int, bool, datetime]:
    """Add one failure to ``key``'s window (a new window once the last one ended).

    The row is locked for the update, so concurrent failures on any worker are all counted.

    Returns:
        The failures in the window, whether the key was new, and when the window ends.
    """
    counter, created = FailedLoginCounter.objects.select_for_update().get_or_create(
        key=key, defaults={"failures": 1, "window_started": now}
    )
    if created:
        return 1, True, _window_end(counter)
    if _window_end(counter) <= now:
        counter.failures, counter.window_started = 1, now
    else:
        counter.failures += 1
    counter.save(update_fields=["failures", "window_started"])
    return counter.failures, False, _window_end(counter)


def _forget_ended_windows(now: datetime) -> None:
    """Delete counters whose window ended (when a new key appears, so the table stays small)."""
    ended = now - timedelta(seconds=limits().window_seconds)
    FailedLoginCounter.objects.filter(window_started__lte=ended).delete()


def unlock(*, username: str | None = None, address: str | None = None) -> int:
    """Forget the failures of ``username`` and/or ``address``; return how many counters went.

    Raises:
        ValueError: ``address`` is not an IP address.
    """
    keys = []
    if username is not None:
        keys.append(_Scope("user", username, 0).key)
    if address is not None:
        normalised = counted_address({"REMOTE_ADDR": address}, proxy_hops=0)
        if normalised is None:
            raise ValueError(f"{address!r} is not an IP address")
        keys.append(_Scope("addr", normalised, 0).key)
    deleted, _ = FailedLoginCounter.objects.filter(key__in=keys).delete()
    return deleted
