"""Domains and the grants that let a user manage their challenge records."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

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
