"""JWT refresh that answers 401, not 500, for a token whose user was deleted since."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenRefreshSerializer


class RefreshForExistingUserSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, with a deleted user treated like an inactive one."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        """Refresh, refusing tokens of users that no longer exist."""
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist as exc:
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from exc
