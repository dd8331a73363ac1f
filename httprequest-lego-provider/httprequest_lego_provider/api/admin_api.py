"""The staff-only REST API under ``/api/v1/``: domains, grants and users."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

from api.accounts import validate_chosen_password
from api.client_address import InvalidNetworksError, parse_networks
from api.machine_scope import scope_of
from api.models import Domain, DomainUserPermission, MachineCredentialScope
from api.permissions import may_change_account, may_grant_privileges


class DomainSerializer(serializers.ModelSerializer[Domain]):
    """A domain; the name is normalised (lower case, no trailing dot) before validation."""

    class Meta:
        model = Domain
        fields = ("id", "fqdn")

    def to_internal_value(self, data: Any) -> Any:
        """Normalise the name so ``Example.COM.`` and ``example.com`` are one domain."""
        if isinstance(data, dict) and isinstance(data.get("fqdn"), str):
            data = {**data, "fqdn": data["fqdn"].lower().removesuffix(".")}
        return super().to_internal_value(data)


class DomainUserPermissionSerializer(serializers.ModelSerializer[DomainUserPermission]):
    """A grant."""

    class Meta:
        model = DomainUserPermission
        fields = ("id", "domain", "user", "access_level", "text")


class UserSerializer(serializers.ModelSerializer[User]):
    """A user; the password is write-only, checked by the password rule and stored hashed.

    ``allowed_networks`` (CIDR list, empty: anywhere) and ``expires_at`` (null: never) are the
    account's machine-credential scope (:mod:`api.machine_scope`).
    """

    password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"}, trim_whitespace=False
    )
    # Written here, read from the scope row by to_representation.
    allowed_networks = serializers.JSONField(required=False, write_only=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, write_only=True)

    class Meta:
        model = get_user_model()
        fields = (
            "id",
            "username",
            "password",
            "email",
            "is_staff",
            "is_superuser",
            "is_active",
            "allowed_networks",
            "expires_at",
        )

    def validate_allowed_networks(self, value: object) -> list[str]:
        """A list of CIDR networks, normalised."""
        try:
            return parse_networks(value)
        except InvalidNetworksError as exc:
            raise serializers.ValidationError(f"allowed networks {exc}") from exc

    def to_representation(self, instance: User) -> dict[str, Any]:
        """The account, with its scope (none: anywhere, never expiring)."""
        data: dict[str, Any] = super().to_representation(instance)
        scope = scope_of(instance)
        expires_at = scope.expires_at if scope else None
        data["allowed_networks"] = list(scope.allowed_networks) if scope else []
        shown = self.fields["expires_at"].to_representation
        data["expires_at"] = None if expires_at is None else shown(expires_at)
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Refuse privilege grants by non-superusers and passwords that break the rule."""
        actor: User = self.context["request"].user
        wants_privileges = attrs.get("is_staff") or attrs.get("is_superuser")
        if wants_privileges and not may_grant_privileges(actor):
            raise exceptions.PermissionDenied(
                "only a superuser may make a staff or superuser account"
            )
        password = attrs.get("password")
        if password is not None:
            try:
                validate_chosen_password(password, self._account_as_it_will_be(attrs))
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": exc.messages}) from exc
        return attrs

    def _account_as_it_will_be(self, attrs: dict[str, Any]) -> User:
        """An unsaved copy of the account with the new values, for the similarity rule."""
        current: User | None = self.instance
        names = ("username", "email", "first_name", "last_name")
        values = {name: getattr(current, name) for name in names} if current else {}
        values |= {name: attrs[name] for name in names if name in attrs}
        account: User = get_user_model()(**values)
        return account

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> User:
        """Create with a hashed password (or an unusable one when none is given)."""
        password = validated_data.pop("password", None)
        scope = _pop_scope(validated_data)
        user: User = get_user_model()(**validated_data)
        user.set_password(password)
        user.save()
        _save_scope(user, scope)
        return user

    @transaction.atomic
    def update(self, instance: User, validated_data: dict[str, Any]) -> User:
        """Update, hashing a new password if one is given."""
        password = validated_data.pop("password", None)
        scope = _pop_scope(validated_data)
        if password is not None:
            instance.set_password(password)
        user = super().update(instance, validated_data)
        _save_scope(user, scope)
        return user


_SCOPE_FIELDS = ("allowed_networks", "expires_at")


def _pop_scope(validated_data: dict[str, Any]) -> dict[str, Any]:
    return {name: validated_data.pop(name) for name in _SCOPE_FIELDS if name in validated_data}


def _save_scope(user: User, changes: dict[str, Any]) -> None:
    """Write the scope fields that were given (a partial update keeps the others)."""
    if not changes:
        return
    scope, _ = MachineCredentialScope.objects.select_for_update().get_or_create(user=user)
    for name, value in changes.items():
        setattr(scope, name, value)
    scope.save()
    user.credential_scope = scope


class MayChangeAccount(permissions.BasePermission):
    """Reading is for all staff; changing a staff or superuser account is for superusers."""

    message = "only a superuser may change a staff or superuser account"

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        """Apply :func:`api.permissions.may_change_account` to every unsafe method."""
        if request.method in permissions.SAFE_METHODS:
            return True
        actor: User = request.user  # type: ignore[assignment]
        return may_change_account(actor, obj)


class DomainFilter(django_filters.FilterSet):
    """``?fqdn=``."""

    class Meta:
        model = Domain
        fields = ("fqdn",)


class DomainUserPermissionFilter(django_filters.FilterSet):
    """``?username=`` and ``?fqdn=``."""

    username = django_filters.CharFilter(field_name="user__username")
    fqdn = django_filters.CharFilter(field_name="domain__fqdn")

    class Meta:
        model = DomainUserPermission
        fields = ("username", "fqdn", "access_level")


class UserFilter(django_filters.FilterSet):
    """``?username=``."""

    class Meta:
        model = get_user_model()
        fields = ("username",)


class DomainViewSet(viewsets.ModelViewSet[Domain]):
    """CRUD on domains."""

    queryset = Domain.objects.all()
    serializer_class = DomainSerializer
    filterset_class = DomainFilter
    permission_classes = (permissions.IsAdminUser,)


class DomainUserPermissionViewSet(viewsets.ModelViewSet[DomainUserPermission]):
    """CRUD on grants."""

    queryset = DomainUserPermission.objects.select_related("user", "domain")
    serializer_class = DomainUserPermissionSerializer
    filterset_class = DomainUserPermissionFilter
    permission_classes = (permissions.IsAdminUser,)


class UserViewSet(viewsets.ModelViewSet[User]):
    """CRUD on users."""

    queryset = get_user_model().objects.select_related("credential_scope").order_by("username")
    serializer_class = UserSerializer
    filterset_class = UserFilter
    permission_classes = (permissions.IsAdminUser, MayChangeAccount)
