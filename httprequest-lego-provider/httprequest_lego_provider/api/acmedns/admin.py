"""acme-dns accounts in the Django admin: created by staff with the key shown once.

Creation goes through :func:`api.acmedns.accounts.create_account`, the function ``/register``
and ``create_acmedns_account`` call, so the same rules hold (a grant covering the name, only a
superuser acting for a staff account); the page then shows the account file the command prints.
After that only ``allowfrom`` can change; deleting withdraws the account's values first.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.views.decorators.debug import sensitive_variables

from api.acmedns.accounts import create_account, delete_account, set_allowfrom
from api.acmedns.config import acmedns_config
from api.acmedns.errors import AcmeDnsError, InvalidAllowfromError
from api.acmedns.networks import split_allowfrom
from api.admin_credentials import form_page, shown_once
from api.admin_rules import AccountRuleMixin
from api.models import AcmeDnsAccount
from api.permissions import may_grant_privileges

ACCOUNT_TEMPLATE = "admin/api/credentials/acmedns_account.html"
ALLOWFROM_HELP = (
    "Networks (CIDR: 192.0.2.0/24, 2001:db8::/32) updates may come from, one per line or "
    "comma-separated; empty: anywhere."
)


def _networks(raw: str) -> list[str]:
    """The command line's parsing of allowfrom, its message as a form error."""
    try:
        return split_allowfrom(raw)
    except InvalidAllowfromError as exc:
        raise forms.ValidationError(exc.detail) from exc


def _owners(actor: User) -> QuerySet[User]:
    """The users ``actor`` may create acme-dns accounts for (staff ones are a superuser's)."""
    users = get_user_model()._default_manager.filter(is_active=True).order_by("username")
    if may_grant_privileges(actor):
        return users
    return users.filter(is_staff=False, is_superuser=False)


class NewAccountForm(forms.Form):
    """What ``/register`` takes: the owner, the name, the style and the networks."""

    user = forms.ModelChoiceField(
        queryset=get_user_model()._default_manager.none(),
        help_text="The user the account acts for; it needs a grant covering the name.",
    )
    domain = forms.CharField(
        max_length=253,
        help_text="The name certificates are for, e.g. www.example.com (or *.example.com).",
    )
    delegated = forms.BooleanField(required=False)
    allowfrom = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=ALLOWFROM_HELP
    )

    def __init__(self, *args: Any, actor: User, zone: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[User]", self.fields["user"]).queryset = _owners(actor)
        delegated = self.fields["delegated"]
        if zone is None:
            delegated.disabled = True
            delegated.help_text = escape(
                "Needs a delegation zone (DJANGO_ACMEDNS_ZONE), which is not set: accounts "
                "publish at _acme-challenge.<name> itself."
            )
        else:
            delegated.help_text = escape(
                f"Publish at <uuid>.{zone}; the user adds a CNAME to it from "
                "_acme-challenge.<name> once. Unchecked: at _acme-challenge.<name> itself."
            )

    def clean_allowfrom(self) -> list[str]:
        """Networks in CIDR notation, normalised."""
        return _networks(self.cleaned_data.get("allowfrom") or "")


class AllowfromForm(forms.ModelForm[AcmeDnsAccount]):
    """The one field of an account that changes after its creation, as text."""

    allowfrom = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=ALLOWFROM_HELP
    )

    class Meta:
        model = AcmeDnsAccount
        fields = ("allowfrom",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["allowfrom"] = "\n".join(self.instance.allowfrom)

    def clean_allowfrom(self) -> list[str]:
        """Networks in CIDR notation, normalised."""
        return _networks(self.cleaned_data.get("allowfrom") or "")


@admin.register(AcmeDnsAccount)
class AcmeDnsAccountAdmin(AccountRuleMixin, admin.ModelAdmin[AcmeDnsAccount]):
    """acme-dns accounts: add (key shown once), list, change allowfrom, delete."""

    form = AllowfromForm
    list_display = ("user", "domain", "fulldomain", "delegated", "networks", "created_at")
    list_filter = ("delegated",)
    search_fields = ("user__username", "domain", "fulldomain")
    fields = (
        "user",
        "domain",
        "delegated",
        "fulldomain",
        "username",
        "subdomain",
        "allowfrom",
        "txt_values",
        "created_at",
        "updated_at",
    )
    readonly_fields = tuple(name for name in fields if name != "allowfrom")

    @admin.display(description="allowfrom")
    def networks(self, obj: AcmeDnsAccount) -> str:
        """The networks on one line; "anywhere" when there are none."""
        return ", ".join(obj.allowfrom) or "anywhere"

    @sensitive_variables("new", "account_file")
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Create the account with :func:`create_account`; show its account file once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        actor: User = request.user  # type: ignore[assignment]
        config = acmedns_config()
        data = request.POST if request.method == "POST" else None
        initial = {name: request.GET[name] for name in ("user", "domain") if name in request.GET}
        form = NewAccountForm(data, initial=initial, actor=actor, zone=config.zone)
        if data is not None and form.is_valid():
            try:
                new = create_account(
                    form.cleaned_data["user"].get_username(),
                    form.cleaned_data["domain"],
                    delegated=form.cleaned_data["delegated"],
                    allowfrom=form.cleaned_data["allowfrom"],
                    config=config,
                    actor=actor,
                )
            except AcmeDnsError as exc:
                form.add_error(None, exc.detail or exc.code)
            else:
                self.log_addition(request, new.account, [{"added": {}}])
                account_file = json.dumps(new.storage(config.server_url), indent=2)
                return shown_once(
                    request,
                    ACCOUNT_TEMPLATE,
                    {
                        **self.admin_site.each_context(request),
                        "title": f"acme-dns account for {new.account.domain} created",
                        "opts": self.opts,
                        "original": new.account,
                        "account_file": account_file,
                        "endpoint": config.server_url
                        or request.build_absolute_uri("/").rstrip("/"),
                    },
                )
        return form_page(
            self,
            request,
            form,
            title="Add acme-dns account",
            intro=(
                "Credentials for clients that speak acme-dns's API (cert-manager, lego "
                "--dns acme-dns, acme.sh, certbot hooks). The key is generated and shown once, "
                "in the account file those clients read; only its hash is kept."
            ),
            submit="Create and show the account file",
        )

    def save_model(
        self, request: HttpRequest, obj: AcmeDnsAccount, form: Any, change: bool
    ) -> None:
        """Only allowfrom changes here (additions go through :meth:`add_view`)."""
        set_allowfrom(obj, obj.allowfrom)

    def delete_model(self, request: HttpRequest, obj: AcmeDnsAccount) -> None:
        """Delete as the admin API does: the values are withdrawn from DNS first."""
        delete_account(obj)
