"""Staff-only ``/api/v1/acmedns-accounts/``: list, show, change allowfrom, delete; no keys."""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.contrib.auth.models import User
from rest_framework import exceptions, mixins, permissions, serializers, viewsets

from api.acmedns.accounts import delete_account, set_allowfrom
from api.acmedns.errors import InvalidAllowfromError
from api.acmedns.networks import parse_allowfrom
from api.models import AcmeDnsAccount
from api.permissions import may_change_account


class AcmeDnsAccountSerializer(serializers.ModelSerializer[AcmeDnsAccount]):
    """An account as staff see it; only ``allowfrom`` can change."""

    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    txt = serializers.JSONField(source="txt_values", read_only=True)

    class Meta:
        model = AcmeDnsAccount
        fields = (
            "id",
            "username",
            "subdomain",
            "fulldomain",
            "user",
            "domain",
            "delegated",
            "allowfrom",
            "txt",
            "created_at",
            "updated_at",
        )
        read_only_fields = tuple(f for f in fields if f != "allowfrom")

    def validate_allowfrom(self, value: Any) -> list[str]:
        """Networks in CIDR notation, as acme-dns's register takes them."""
        try:
            return parse_allowfrom(value)
        except InvalidAllowfromError as exc:
            raise serializers.ValidationError(exc.detail) from exc

    def update(self, instance: AcmeDnsAccount, validated_data: dict[str, Any]) -> AcmeDnsAccount:
        """Only allowfrom is writable."""
        if "allowfrom" in validated_data:
            return set_allowfrom(instance, validated_data["allowfrom"])
        return instance


class AcmeDnsAccountFilter(django_filters.FilterSet):
    """``?user=`` (the owner's username) and ``?domain=``."""

    user = django_filters.CharFilter(field_name="user__username")

    class Meta:
        model = AcmeDnsAccount
        fields = ("user", "domain", "delegated")


class AcmeDnsAccountViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[AcmeDnsAccount],
):
    """Accounts are created by ``/register`` or the command, which show the key once."""

    queryset = AcmeDnsAccount.objects.select_related("user")
    serializer_class = AcmeDnsAccountSerializer
    filterset_class = AcmeDnsAccountFilter
    permission_classes = (permissions.IsAdminUser,)

    def _check_owner(self, account: AcmeDnsAccount) -> None:
        """The rule of every account change: staff accounts are a superuser's to manage."""
        if not may_change_account(cast(User, self.request.user), account.user):
            raise exceptions.PermissionDenied(
                f"only a superuser may change the accounts of {account.user.username}"
            )

    def perform_update(self, serializer: serializers.BaseSerializer[AcmeDnsAccount]) -> None:
        """Change allowfrom, if the account's user is one this staff member may manage."""
        if isinstance(serializer.instance, AcmeDnsAccount):  # always, for an update
            self._check_owner(serializer.instance)
        serializer.save()

    def perform_destroy(self, instance: AcmeDnsAccount) -> None:
        """Withdraw the account's values from DNS before the account goes."""
        self._check_owner(instance)
        delete_account(instance)
