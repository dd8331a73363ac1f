"""JWTs bound to the credentials they were issued under (see :mod:`api.credentials`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token

from api import credentials

CREDENTIALS_CHANGED = "token no longer valid (password changed, account deactivated or deleted)"


class CredentialBoundTokenObtainPairSerializer(TokenObtainPairSerializer):
    """simplejwt's token pair, carrying the account's credential fingerprint."""

    @classmethod
    def get_token(cls, user: User) -> Token:  # type: ignore[override]
        """The refresh token; the access token derived from it copies the claim."""
        token = super().get_token(user)
        token[credentials.TOKEN_CLAIM] = credentials.fingerprint(user)
        return token


class RefreshForExistingUserSerializer(TokenRefreshSerializer):
    """Refresh only for an account that exists, is active and kept its credentials.

    A deleted account answers 401 rather than simplejwt's 500.
    """

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        """Refuse a refresh token whose account changed since it was issued."""
        refresh = RefreshToken(attrs["refresh"])  # a bad or expired token raises TokenError
        user_id = refresh.payload.get(api_settings.USER_ID_CLAIM)
        presented = refresh.payload.get(credentials.TOKEN_CLAIM)
        if credentials.active_user_for(user_id, presented) is None:
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            )
        return super().validate(attrs)


class CredentialBoundJWTAuthentication(JWTAuthentication):
    """Bearer authentication that refuses tokens of changed, inactive or deleted accounts."""

    def get_user(self, validated_token: Token) -> User:  # type: ignore[override]
        """The token's account, in one query, if its credentials are unchanged."""
        user = credentials.active_user_for(
            validated_token.get(api_settings.USER_ID_CLAIM),
            validated_token.get(credentials.TOKEN_CLAIM),
        )
        if user is None:
            raise AuthenticationFailed(CREDENTIALS_CHANGED, code="credentials_changed")
        return user
