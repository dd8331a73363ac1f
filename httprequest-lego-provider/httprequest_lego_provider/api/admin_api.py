"""The staff-only REST API under ``/api/v1/``: domains, grants and users."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from rest_framework import permissions, serializers, viewsets

from api.models import Domain, DomainUserPermission


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
    """A user; the password is write-only and stored hashed."""

    password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"}
    )

    class Meta:
        model = get_user_model()
        fields = ("id", "username", "password", "email", "is_staff", "is_active")

    def create(self, validated_data: dict[str, Any]) -> User:
        """Create with a hashed password (or an unusable one when none is given)."""
        password = validated_data.pop("password", None)
        user: User = get_user_model()(**validated_data)
        user.set_password(password)
        user.save()
        return user

    def update(self, instance: User, validated_data: dict[str, Any]) -> User:
        """Update, hashing a new password if one is given."""
        password = validated_data.pop("password", None)
        user = super().update(instance, validated_data)
        if password is not None:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user


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

    queryset = get_user_model().objects.order_by("username")
    serializer_class = UserSerializer
    filterset_class = UserFilter
    permission_classes = (permissions.IsAdminUser,)
