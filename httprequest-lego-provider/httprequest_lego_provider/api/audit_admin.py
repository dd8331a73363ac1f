"""The audit trail in the Django admin: read-only for everyone, filtered and searchable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from api.models import AuditEvent, PublishedRecord


class _ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Staff may look; nobody adds, changes or deletes rows through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Rows are written by the service only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A trail that can be edited proves nothing."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows go only when the retention period ends (``prune_audit``)."""
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(_ReadOnlyAdmin):
    """Every change: who, what, from where, how it ended."""

    list_display = ("at", "actor", "via", "action", "name", "subject", "result", "reason")
    list_filter = ("action", "result", "via", ("at", admin.DateFieldListFilter))
    search_fields = ("actor", "name", "subject", "value_digest", "client_address")
    date_hierarchy = "at"
    readonly_fields = tuple(field.name for field in AuditEvent._meta.fields)


@admin.register(PublishedRecord)
class PublishedRecordAdmin(_ReadOnlyAdmin):
    """The records published now, oldest first: what the janitor will withdraw."""

    list_display = ("name", "via", "presented_at", "confirmed")
    list_filter = ("via", "confirmed")
    search_fields = ("name",)
    exclude = ("value",)
