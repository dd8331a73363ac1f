"""Django admin registrations."""

from __future__ import annotations

from django.contrib import admin

from api.models import Domain, DomainUserPermission


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin[Domain]):
    """Domains, searchable by name."""

    search_fields = ("fqdn",)


@admin.register(DomainUserPermission)
class DomainUserPermissionAdmin(admin.ModelAdmin[DomainUserPermission]):
    """Grants, filterable by access level."""

    list_display = ("user", "domain", "access_level", "text")
    list_filter = ("access_level",)
    search_fields = ("user__username", "domain__fqdn")
    autocomplete_fields = ("domain",)
