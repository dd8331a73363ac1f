"""The service's exceptions: one root; subclasses carry their HTTP status and public message."""

from __future__ import annotations

from typing import ClassVar


class RouterError(Exception):
    """Root of every error the router raises on purpose.

    The public message is what GitHub shows in the delivery's response tab, so it is short, says
    what is wrong and never repeats the request body.
    """

    status: ClassVar[int] = 500
    reason: ClassVar[str] = "internal"
    default_message: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ConfigError(RouterError):
    """The configuration is invalid; the message names the variable and the problem."""

    reason = "config"
    default_message = "Invalid configuration"


class SignatureMissingError(RouterError):
    """A webhook secret is configured but the request carries no signature."""

    status = 403
    reason = "signature_missing"
    default_message = "Missing X-Hub-Signature-256 header"


class SignatureMismatchError(RouterError):
    """The signature does not match the body: wrong secret or altered body."""

    status = 403
    reason = "signature_mismatch"
    default_message = "Signature does not match the body"


class EventMissingError(RouterError):
    """The request has no X-GitHub-Event header, so it did not come from GitHub."""

    status = 400
    reason = "event_missing"
    default_message = "Missing X-GitHub-Event header"


class EventUnsupportedError(RouterError):
    """The webhook subscribes to events other than workflow_job."""

    status = 400
    reason = "event_unsupported"
    default_message = "Unsupported event: subscribe the webhook to workflow_job only"


class UnsupportedMediaTypeError(RouterError):
    """The body is neither JSON nor a form with a payload field."""

    status = 415
    reason = "content_type"
    default_message = (
        "Unsupported content type: use application/json or application/x-www-form-urlencoded"
    )


class PayloadError(RouterError):
    """The body is not a workflow_job payload of the expected shape."""

    status = 400
    reason = "payload_invalid"
    default_message = "Invalid payload"


class BodyTooLargeError(RouterError):
    """The body is larger than the configured limit."""

    status = 413
    reason = "body_too_large"
    default_message = "Body too large"


class LengthRequiredError(RouterError):
    """The body came without Content-Length (chunked); GitHub always sends the length.

    Requiring it lets the size limit be enforced before anything is read.
    """

    status = 411
    reason = "length_required"
    default_message = "Content-Length header required"


class DeliveryInProgressError(RouterError):
    """Another request has been publishing this job for the whole publish budget.

    A copy of a delivery waits for the first one's outcome; this is the answer only when the
    first neither published nor failed in time (its worker died, say). An error (not 200)
    keeps the delivery redeliverable; a redelivery after the first succeeded is a duplicate.
    """

    status = 503
    reason = "delivery_in_progress"
    default_message = "This job is still being queued by another request; redeliver if it failed"


class RepositoryNotAllowedError(RouterError):
    """The job's repository is not in FLASK_ALLOWED_REPOSITORIES."""

    status = 403
    reason = "repository_not_allowed"
    default_message = "Jobs of this repository are not routed here"


class SourceNotAllowedError(RouterError):
    """The client address is not in FLASK_ALLOWED_NETWORKS."""

    status = 403
    reason = "source_not_allowed"
    default_message = "Webhooks are not accepted from this address"


class BrokerUnavailableError(RouterError):
    """The broker did not store the job within the time limit."""

    status = 503
    reason = "broker_unavailable"
    default_message = "Message broker unavailable; the job was not queued, redeliver later"
