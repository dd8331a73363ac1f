"""The business logic of the httpreq endpoints: check the grant, then change the record."""

from __future__ import annotations

import logging

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from api.backend import get_backend
from api.challenges import Challenge
from api.errors import NameNotAllowedError
from api.permissions import may_manage

logger = logging.getLogger(__name__)


def _authorise(user: AbstractBaseUser | AnonymousUser, challenge: Challenge) -> None:
    if not may_manage(user, challenge.domain):
        logger.info("refused %s for %s", challenge.fqdn, user.get_username())
        raise NameNotAllowedError(user.get_username(), challenge.fqdn)


def record_present(*, user: AbstractBaseUser | AnonymousUser, challenge: Challenge) -> None:
    """Publish the challenge's TXT value, beside any other value at that name.

    Returns only once the backend has made the change durable.
    """
    _authorise(user, challenge)
    get_backend().present(challenge.fqdn, challenge.value)
    logger.info("presented %s for %s", challenge.fqdn, user.get_username())


def record_cleanup(*, user: AbstractBaseUser | AnonymousUser, challenge: Challenge) -> None:
    """Withdraw exactly the challenge's TXT value; other values at that name stay."""
    _authorise(user, challenge)
    get_backend().cleanup(challenge.fqdn, challenge.value)
    logger.info("cleaned up %s for %s", challenge.fqdn, user.get_username())
