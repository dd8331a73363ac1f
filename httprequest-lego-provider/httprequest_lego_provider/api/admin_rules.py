"""The account rule of the Django admin, for the pages of accounts and of what they own.

Changing or deleting a staff or superuser account is for superusers, and so is changing or
deleting what such an account owns (its credential scope, its acme-dns accounts): otherwise
staff could widen a superuser's allowed networks or take over its acme-dns key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest

from api.permissions import may_change_account

if TYPE_CHECKING:
    from django.contrib import admin

    _ModelAdmin = admin.ModelAdmin[Any]
else:  # a mixin: the ModelAdmin it is mixed into comes later in the bases
    _ModelAdmin = object


class AccountRuleMixin(_ModelAdmin):
    """Django's change and delete permissions, narrowed by :func:`may_change_account`.

    ``account_of`` names the account an object belongs to (its ``user`` by default).
    """

    def account_of(self, obj: Any) -> Any:
        """The account ``obj`` belongs to."""
        return obj.user

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Changing what a staff or superuser account owns is for superusers."""
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_change_account(request.user, self.account_of(obj)))  # type: ignore[arg-type]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """So is deleting it (bulk deletion checks each object too)."""
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_change_account(request.user, self.account_of(obj)))  # type: ignore[arg-type]
