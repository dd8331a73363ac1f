"""Django admin registrations, with the same account rules as the admin REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminPasswordChangeForm as OwnPasswordChangeForm
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    AdminUserCreationForm,
    PasswordChangeForm,
)
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, path, reverse

from api import audit_admin as _audit_admin  # noqa: F401 - registers the audit trail
from api import credentials, machine_scope, throttle
from api.accounts import validate_chosen_password
from api.acmedns import admin as _acmedns_admin  # noqa: F401 - registers acme-dns accounts
from api.admin_credentials import add_machine_user
from api.admin_rules import AccountRuleMixin
from api.client_address import InvalidNetworksError, split_networks
from api.models import Domain, DomainUserPermission, MachineCredentialScope
from api.permissions import may_grant_privileges

PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


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


class _PasswordRuleMixin:
    """Check a new password with :func:`api.accounts.validate_chosen_password`, like every path."""

    cleaned_data: dict[str, Any]

    def validate_password_for_user(
        self,
        user: User,
        password_field_name: str = "password2",  # noqa: S107 (a field name)
        **kwargs: Any,
    ) -> None:
        """Django's forms call this for a usable password; apply the project's one rule."""
        if not self.cleaned_data.get("set_usable_password", True):
            return  # the admin chose "no password": nothing to check
        password = self.cleaned_data.get(password_field_name)
        if password:
            try:
                validate_chosen_password(password, user)
            except ValidationError as error:
                self.add_error(password_field_name, error)  # type: ignore[attr-defined]


class AccountCreationForm(_PasswordRuleMixin, AdminUserCreationForm[User]):
    """The admin's add-user form."""


if TYPE_CHECKING:
    _PasswordForm = AdminPasswordChangeForm[User]
else:  # not subscriptable at run time (django_stubs_ext does not patch it)
    _PasswordForm = AdminPasswordChangeForm


class AccountPasswordForm(_PasswordRuleMixin, _PasswordForm):
    """The admin's set-password form."""


class OwnPasswordForm(_PasswordRuleMixin, OwnPasswordChangeForm):
    """The admin's change-your-own-password form."""

    def clean_old_password(self) -> str:
        """Check the old password without re-hashing it.

        ``User.check_password`` would re-hash a generated password with the slow default
        hasher, which changes the stored hash (and so ends this very session) even when the
        new password is then refused.
        """
        old_password: str = self.cleaned_data["old_password"]
        if not check_password(old_password, self.user.password):
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class CredentialScopeForm(forms.ModelForm[MachineCredentialScope]):
    """The allowed networks as text, one per line (or comma-separated)."""

    allowed_networks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Networks in CIDR notation (192.0.2.0/24, 2001:db8::/32), one per line; "
        "empty: anywhere.",
    )

    class Meta:
        model = MachineCredentialScope
        fields = ("user", "allowed_networks", "expires_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["allowed_networks"] = "\n".join(self.instance.allowed_networks)

    def clean_allowed_networks(self) -> list[str]:
        """Parse and normalise the networks."""
        try:
            return split_networks(self.cleaned_data.get("allowed_networks") or "")
        except InvalidNetworksError as exc:
            raise ValidationError(f"allowed networks {exc}") from exc


@admin.register(MachineCredentialScope)
class CredentialScopeAdmin(AccountRuleMixin, admin.ModelAdmin[MachineCredentialScope]):
    """Where from and until when an account's password works (api.machine_scope).

    Its own page rather than a section of the user's: the user form stays as Django makes it.
    Like the account itself, the scope of a staff or superuser account is for superusers.
    """

    form = CredentialScopeForm
    list_display = ("user", "networks", "expires_at")
    search_fields = ("user__username",)
    autocomplete_fields = ("user",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The account is chosen when the scope is created, then fixed."""
        return ("user", "allowed_networks", "expires_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The account of an existing scope cannot be swapped for another."""
        return ("user",) if obj is not None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """Staff may only choose accounts they may change (not staff, not superusers)."""
        if db_field.name == "user" and not may_grant_privileges(request.user):  # type: ignore[arg-type]
            kwargs["queryset"] = User.objects.filter(is_staff=False, is_superuser=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="allowed networks")
    def networks(self, obj: MachineCredentialScope) -> str:
        """The networks on one line; "anywhere" when there are none."""
        return ", ".join(obj.allowed_networks) or "anywhere"


admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(AccountRuleMixin, UserAdmin[User]):
    """Django's user admin, except that staff cannot change staff or superuser accounts.

    Besides Django's add-user page (a password a person chooses, the slow hasher) it has "Add
    machine user" (:mod:`api.admin_credentials`): a generated password, shown once.
    """

    add_form = AccountCreationForm
    change_password_form = AccountPasswordForm
    add_form_template = "admin/api/credentials/user_add_form.html"
    change_list_template = "admin/api/credentials/user_change_list.html"

    def get_urls(self) -> list[URLPattern]:
        """``add-machine/`` first: Django's ``<object_id>/`` patterns would take it otherwise."""
        add_machine = self.admin_site.admin_view(self.add_machine_user_view)
        own = [path("add-machine/", add_machine, name="auth_user_add_machine")]
        return own + super().get_urls()

    def add_machine_user_view(self, request: HttpRequest) -> HttpResponse:
        """Create a machine user whose generated password is shown once."""
        return add_machine_user(self, request)

    def account_of(self, obj: Any) -> Any:
        """The account itself: changing one (password included) follows the account rule."""
        return obj

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Only a superuser may make an account staff or superuser, or give it permissions."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if may_grant_privileges(request.user):  # type: ignore[arg-type]
            return fields
        return fields + PRIVILEGE_FIELDS


def login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin's login page; a locked-out username or address gets 429 with Retry-After.

    The right password of an expired account gets 401, from outside its networks 403.
    """
    try:
        return admin.site.login(request, extra_context)
    except (
        throttle.LoginThrottled,
        machine_scope.CredentialExpiredError,
        machine_scope.AddressNotAllowedError,
    ) as exc:
        response = HttpResponse(
            f"{exc.detail}\n", status=exc.status_code, content_type="text/plain; charset=utf-8"
        )
        if isinstance(exc, throttle.LoginThrottled):
            response["Retry-After"] = str(exc.retry_after)
        return response


class _OwnPasswordChangeView(PasswordChangeView):
    """Django's own-password page with the project's rule; this session stays logged in."""

    form_class = OwnPasswordForm

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        """Save (Django keeps this session's auth hash), then rebind this session's fingerprint."""
        response = super().form_valid(form)
        credentials.bind_session(self.request, form.user)
        return response


def _password_change(request: HttpRequest) -> HttpResponseBase:
    request.current_app = admin.site.name
    view = _OwnPasswordChangeView.as_view(
        success_url=reverse("admin:password_change_done"),
        extra_context=admin.site.each_context(request),
    )
    return view(request)


# Routed before admin.site.urls in urls.py, like the login above.
password_change = admin.site.admin_view(_password_change, cacheable=True)
