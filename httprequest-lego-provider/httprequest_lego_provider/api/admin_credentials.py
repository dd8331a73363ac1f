"""Django admin pages that make a credential on the server and show it once.

A machine user (lego's ``HTTPREQ_USERNAME``/``HTTPREQ_PASSWORD``) gets a generated password
checked by the fast hasher, as ``create_user`` without a password gives it, instead of the
person-style password of Django's add-user form. The secret exists in clear only in the answer
to the form's POST: no redirect carries it, so it is in no URL, session, message or log line,
and that page is sent ``Cache-Control: no-store``. Reloading re-posts the form, which then
finds the username taken and shows no password.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import AdminForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UsernameField
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_variables

from api.hashers import generate_password, make_generated_password_hash

if TYPE_CHECKING:
    from django.contrib.auth.admin import UserAdmin

FORM_TEMPLATE = "admin/api/credentials/form.html"
MACHINE_USER_TEMPLATE = "admin/api/credentials/machine_user.html"
USERNAME_TAKEN = "A user with that username already exists."


def shown_once(request: HttpRequest, template: str, context: Mapping[str, Any]) -> HttpResponse:
    """Render the page that holds a secret, with headers that keep every cache from storing it.

    Rendered here (not lazily like a ``TemplateResponse``), so the secret is never part of a
    response object that middleware could still hold on to unrendered.
    """
    response = render(request, template, context)
    add_never_cache_headers(response)  # max-age=0, no-cache, no-store, must-revalidate, private
    return response


def form_page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    form: forms.BaseForm,
    *,
    title: str,
    intro: str,
    submit: str,
) -> TemplateResponse:
    """The admin's look for a creation form: breadcrumbs, one aligned fieldset, one button."""
    fieldsets = [(None, {"fields": list(form.fields)})]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "submit": submit,
        # Any form does (Django's own password page passes a plain one); the stubs say ModelForm.
        "adminform": AdminForm(cast("forms.ModelForm[Any]", form), fieldsets, {}),
        "form": form,
        "media": model_admin.media + form.media,
        "opts": model_admin.opts,
        "has_view_permission": model_admin.has_view_permission(request),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, FORM_TEMPLATE, context)


class MachineUserForm(forms.ModelForm[User]):
    """Only the username: the password is generated, and a machine user is never staff."""

    class Meta:
        model = get_user_model()
        fields = ("username",)
        field_classes = {"username": UsernameField}

    def clean_username(self) -> str:
        """Refuse a name that differs from an existing one only in case, as Django's form does."""
        username: str = self.cleaned_data["username"]
        if get_user_model()._default_manager.filter(username__iexact=username).exists():
            raise forms.ValidationError(USERNAME_TAKEN, code="unique")
        return username


@sensitive_variables("password")
def _create_machine_user(form: MachineUserForm) -> tuple[User, str] | None:
    """Create the user with a new generated password; None when the name was taken meanwhile."""
    password = generate_password()
    user = form.save(commit=False)
    user.password = make_generated_password_hash(password)
    user.is_staff = user.is_superuser = False
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # another request created the same username since the form's check
        form.add_error("username", USERNAME_TAKEN)
        return None
    return user, password


@sensitive_variables("password", "created")
def add_machine_user(model_admin: UserAdmin[User], request: HttpRequest) -> HttpResponse:
    """The "Add machine user" page: a username in, the generated password out, once.

    Staff need Django's add and change permissions on users, as for Django's own add-user
    page; the page cannot make staff or superusers, so it is open to staff and superusers alike.
    """
    if not (
        model_admin.has_add_permission(request) and model_admin.has_change_permission(request)
    ):
        raise PermissionDenied
    form = MachineUserForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            created = _create_machine_user(form)
            if created is not None:
                model_admin.log_addition(request, created[0], [{"added": {}}])
        if created is not None:
            user, password = created
            return shown_once(
                request,
                MACHINE_USER_TEMPLATE,
                {
                    **model_admin.admin_site.each_context(request),
                    "title": f"Machine user {user.get_username()} created",
                    "opts": model_admin.opts,
                    "original": user,
                    "password": password,
                    "endpoint": request.build_absolute_uri("/").rstrip("/"),
                },
            )
    return form_page(
        model_admin,
        request,
        form,
        title="Add machine user",
        intro=(
            "A machine user is the account a client such as lego uses on every call. The server "
            "generates its password (256 bits, checked in microseconds) and shows it once, on "
            "the next page. Grant it names afterwards."
        ),
        submit="Create and show the password",
    )
