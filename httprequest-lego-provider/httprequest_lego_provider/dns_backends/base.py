"""The interface every DNS backend implements, and the errors it may raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dns_backends.deadline import Deadline


class DnsBackendError(Exception):
    """A backend could not apply a change; ``public_message`` is safe to show to the client.

    Backends say what went wrong, not how to answer it: the API's error mapping
    (``api.errors``) chooses the HTTP status from the class. Details stay in the logs.
    """

    default_message = "the DNS backend failed to apply the change"

    def __init__(self, public_message: str | None = None) -> None:
        self.public_message = public_message or self.default_message
        super().__init__(self.public_message)


class DnsBackendUnavailableError(DnsBackendError):
    """The backend is temporarily unreachable (remote down, timeout): retrying may succeed."""

    default_message = "the DNS backend is unavailable, try again later"


class InvalidRecordError(DnsBackendError):
    """The backend cannot hold this name or value: the request is at fault, not the backend.

    The API's grammar refuses such input first; this is each backend's own last check.
    """

    default_message = "the DNS backend cannot hold a record with this name or value"


class ZoneNotFoundError(DnsBackendError):
    """No zone managed by this backend contains the name."""

    def __init__(self, fqdn: str) -> None:
        super().__init__(f"no zone found for {fqdn}: is this site configured for DNS?")


class BackendConfigError(Exception):
    """The backend's configuration is invalid; raised at start-up, naming the variable."""


@runtime_checkable
class DnsBackend(Protocol):
    """Publish and withdraw ACME challenge TXT values.

    Contract (checked for every backend by ``tests/dns_backends/contract.py``):

    - ``fqdn`` is absolute, lower case, without the trailing dot, and already validated as a
      hostname (``_acme-challenge.www.example.com``); ``value`` is already validated (43
      characters of unpadded base64url).
    - ``present`` adds the value beside any other values at that name; presenting a value that
      is already there is a no-op.
    - ``cleanup`` removes exactly that value and leaves the others; removing a value that is
      absent is a no-op. ``replace`` is a present and cleanups at one name, applied together.
    - Both return only once the change is durable where resolvers will read it (for git: the
      commit containing it has been pushed). Safe to call from many threads at once.
    - The zone is the longest suffix of ``fqdn`` that the backend manages; none is
      :class:`ZoneNotFoundError`. A name or value the backend cannot hold is
      :class:`InvalidRecordError`.
    - Every wait ends by ``deadline`` (a default one when None); when it runs out the call
      raises ``DeadlineExceededError`` and the change has been applied whole or not at all.
    """

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Add the TXT ``value`` at ``fqdn``."""

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Remove the TXT ``value`` at ``fqdn``."""

    def replace(
        self,
        fqdn: str,
        value: str,
        old_values: Sequence[str],
        deadline: Deadline | None = None,
    ) -> None:
        """Add ``value`` and remove each of ``old_values`` at ``fqdn``, as one change.

        Resolvers see the values before or after, never a half: the backend applies the whole
        change (one commit, one UPDATE message) or none of it. acme-dns's update uses it to
        keep an account's two newest values for the cost of one write.
        """

    def values(self, fqdn: str) -> set[str]:
        """Return the TXT values currently published at ``fqdn`` (for tests and diagnostics)."""
