"""The business logic of the httpreq endpoints: check the grant, then change the record."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from dns_backends import Deadline

from api import audit
from api.backend import get_backend, request_deadline
from api.challenges import Challenge
from api.errors import NameNotAllowedError
from api.models import AuditAction
from api.permissions import may_manage
from api.recorded_backend import recorded_backend, refused

logger = logging.getLogger(__name__)


def _authorise(
    user: AbstractBaseUser | AnonymousUser, challenge: Challenge, action: AuditAction
) -> None:
    if not may_manage(user, challenge.domain):
        logger.info("refused %s for %s", challenge.fqdn, user.get_username())
        error = NameNotAllowedError(user.get_username(), challenge.fqdn)
        refused(action, challenge.fqdn, challenge.value, str(error.detail))
        raise error


def record_present(
    *,
    user: AbstractBaseUser | AnonymousUser,
    challenge: Challenge,
    deadline: Deadline | None = None,
    withdrawing: Sequence[str] = (),
) -> None:
    """Publish the challenge's TXT value, beside any other value at that name.

    Returns only once the backend has made the change durable, or fails (a 503) when the
    request's deadline runs out first. ``deadline``: the request's, when it makes several
    backend calls (acme-dns's update); a new one by default. ``withdrawing``: older values at
    the name to remove in the same change (acme-dns's update of a direct account); the grant
    is checked once, for the name they share.
    """
    deadline = request_deadline() if deadline is None else deadline
    with audit.acting(actor=user.get_username(), via="httpreq"):
        _authorise(user, challenge, AuditAction.PRESENT)
        recorded_backend(get_backend()).present(
            challenge.fqdn, challenge.value, deadline, withdrawing=withdrawing
        )
    logger.info("presented %s for %s", challenge.fqdn, user.get_username())


def record_cleanup(
    *,
    user: AbstractBaseUser | AnonymousUser,
    challenge: Challenge,
    deadline: Deadline | None = None,
) -> None:
    """Withdraw exactly the challenge's TXT value; other values at that name stay."""
    deadline = request_deadline() if deadline is None else deadline
    with audit.acting(actor=user.get_username(), via="httpreq"):
        _authorise(user, challenge, AuditAction.CLEANUP)
        recorded_backend(get_backend()).cleanup(challenge.fqdn, challenge.value, deadline)
    logger.info("cleaned up %s for %s", challenge.fqdn, user.get_username())
