"""Domains, the grants that let a user manage their challenge records, and account state."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from api.client_address import InvalidNetworksError, parse_networks
from api.names import InvalidNameError, normalise_domain


def validate_domain_name(value: str) -> None:
    """Model validator: the stored name must already be normalised."""
    try:
        normalised = normalise_domain(value)
    except InvalidNameError as exc:
        raise ValidationError(f"{value!r} {exc}") from exc
    if normalised != value:
        raise ValidationError(f"{value!r} must be lower case without a trailing dot")


class Domain(models.Model):
    """A DNS name that grants can refer to (``example.com``, no trailing dot)."""

    fqdn = models.CharField(max_length=253, unique=True, validators=[validate_domain_name])

    class Meta:
        ordering = ("fqdn",)

    def __str__(self) -> str:
        return self.fqdn

    def save(self, *args: object, **kwargs: object) -> None:
        """Normalise and validate on every save, including from management commands."""
        if not self.fqdn.isascii():  # before lower(): "\u212a" (Kelvin) would become "k"
            raise ValidationError("a domain must be an ASCII name (IDNs in their xn-- form)")
        self.fqdn = self.fqdn.lower().rstrip(".")
        validate_domain_name(self.fqdn)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class AccessLevel(models.TextChoices):
    """What a grant covers: exactly the name, or any name strictly below it."""

    DOMAIN = "domain", "Domain (exactly this name)"
    SUBDOMAIN = "subdomain", "Subdomain (any name strictly below)"


class DomainUserPermission(models.Model):
    """A grant: ``user`` may manage the challenge records of ``domain`` at ``access_level``."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="permissions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="domain_permissions"
    )
    access_level = models.CharField(max_length=16, choices=AccessLevel.choices)
    text = models.TextField(blank=True, default="", help_text="A note on why this was granted.")

    class Meta:
        ordering = ("user__username", "domain__fqdn", "access_level")
        constraints = [
            models.UniqueConstraint(
                fields=("user", "domain", "access_level"), name="unique_user_domain_access"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.access_level} {self.domain}"


class CredentialGeneration(models.Model):
    """A counter bumped when an account is deactivated; part of every token's fingerprint.

    A password change alters the fingerprint by itself (it covers the password hash); the
    generation makes a deactivation permanent for the tokens and sessions issued before it.
    See :mod:`api.credentials`.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="credential_generation",
    )
    generation = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.user_id} generation {self.generation}"


class AcmeDnsAccount(models.Model):
    """An acme-dns account: ``/update`` credentials for one user's one granted name.

    The key is stored hashed (the fast hasher: it is generated, 256 bits). ``txt_values`` are
    the values published for the account, oldest first: two after an update, as in acme-dns,
    more only while the backend failed to withdraw the oldest.
    """

    username = models.UUIDField(unique=True, editable=False)
    key_hash = models.CharField(max_length=128, editable=False)
    subdomain = models.UUIDField(unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="acmedns_accounts"
    )
    domain = models.CharField(
        max_length=253,
        validators=[validate_domain_name],
        help_text="The name certificates are for; the user must hold a grant covering it.",
    )
    delegated = models.BooleanField(
        default=False,
        help_text="Values live at <subdomain>.<delegation zone>, reached by the user's CNAME.",
    )
    fulldomain = models.CharField(max_length=253, editable=False)
    allowfrom = models.JSONField(default=list, blank=True)
    txt_values = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("user__username", "domain", "id")

    def __str__(self) -> str:
        return f"acme-dns {self.username} {self.user} {self.domain}"


class FailedLoginCounter(models.Model):
    """Failed logins of one username or one client address in the current window.

    Shared by every worker and unit through the database (see :mod:`api.throttle`). ``key`` is
    ``user:`` or ``addr:`` and a SHA-256 of the value, so any input fits and none is stored.
    """

    key = models.CharField(max_length=72, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_started = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} since {self.window_started:%Y-%m-%d %H:%M:%S}"


def validate_networks(value: object) -> None:
    """Model validator: a list of networks in CIDR notation (see :mod:`api.client_address`)."""
    try:
        parse_networks(value)
    except InvalidNetworksError as exc:
        raise ValidationError(f"allowed networks {exc}") from exc


class MachineCredentialScope(models.Model):
    """Where from, and until when, an account's password works (see :mod:`api.machine_scope`).

    Accounts without a row (or with an empty list and no expiry) are unrestricted.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="credential_scope",
    )
    allowed_networks = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_networks],
        help_text="Networks (CIDR) the account may log in from; empty: anywhere.",
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When the password stops working; empty: never."
    )

    def __str__(self) -> str:
        return f"{self.user_id} scope"

    def save(self, *args: object, **kwargs: object) -> None:
        """Store the networks normalised, from every path (admin, API, shell)."""
        validate_networks(self.allowed_networks)
        self.allowed_networks = parse_networks(self.allowed_networks)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class AuditAction(models.TextChoices):
    """What an audit row records (see docs/audit.md)."""

    PRESENT = "present", "Present a TXT value"
    CLEANUP = "cleanup", "Withdraw a TXT value"
    GRANT = "grant", "Grant a name"
    REVOKE = "revoke", "Revoke a grant"
    ACCOUNT_CREATE = "account-create", "Create an account"
    ACCOUNT_CHANGE = "account-change", "Change an account's status or privileges"
    ACCOUNT_DELETE = "account-delete", "Delete an account"
    CREDENTIAL_CHANGE = "credential-change", "Change a password or key"
    ACMEDNS_CREATE = "acmedns-create", "Create an acme-dns account"
    ACMEDNS_DELETE = "acmedns-delete", "Delete an acme-dns account"


class AuditResult(models.TextChoices):
    """How a change ended: applied, refused before anything changed, or failed."""

    OK = "ok", "ok"
    REFUSED = "refused", "refused"
    FAILED = "failed", "failed"


class AuditEvent(models.Model):
    """One change, who made it and how it ended; never the TXT value or a secret itself.

    Written by :mod:`api.audit` only; read-only in the Django admin; removed after
    ``DJANGO_AUDIT_RETENTION_DAYS`` by ``prune_audit``.
    """

    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, help_text="Who: a username, or janitor/command.")
    via = models.CharField(max_length=16, help_text="Which path: httpreq, acme-dns, admin ...")
    action = models.CharField(max_length=24, choices=AuditAction.choices, db_index=True)
    name = models.CharField(max_length=300, db_index=True, help_text="The record or grant name.")
    subject = models.CharField(
        max_length=150, blank=True, default="", help_text="The account the change is about."
    )
    value_digest = models.CharField(
        max_length=16, blank=True, default="", help_text="SHA-256 of the value, hex, first 16."
    )
    client_address = models.CharField(max_length=64, blank=True, default="")
    result = models.CharField(max_length=8, choices=AuditResult.choices, db_index=True)
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.name} {self.result}"


class PublishedRecord(models.Model):
    """A TXT value the service has asked its backend to publish and not yet withdrawn.

    Written before the backend is asked (so a value is never in DNS without a row, even when
    the process dies mid-way) and deleted once a withdrawal succeeded: the janitor's durable
    source of each record's age. ``value`` is what DNS itself serves; it is kept so the
    janitor can withdraw exactly it. ``confirmed`` says the backend reported it published.
    """

    name = models.CharField(max_length=300)
    value = models.CharField(max_length=255)
    via = models.CharField(max_length=16)
    presented_at = models.DateTimeField(db_index=True)
    confirmed = models.BooleanField(default=False)

    class Meta:
        ordering = ("presented_at", "id")
        constraints = [
            models.UniqueConstraint(fields=("name", "value"), name="unique_published_record")
        ]

    def __str__(self) -> str:
        return f"{self.name} since {self.presented_at:%Y-%m-%d %H:%M:%S}"


# Signal receivers, connected on app load once every model above exists: the audit trail's
# (grants, accounts, credentials), acme-dns's (values withdrawn when an account goes or loses its
# grant) and the ones that keep tokens and sessions bound to credentials.
from api import audit_signals as _audit_signals  # noqa: E402, F401
from api import credentials as _credentials  # noqa: E402, F401
from api.acmedns import lifecycle as _acmedns_lifecycle  # noqa: E402, F401
