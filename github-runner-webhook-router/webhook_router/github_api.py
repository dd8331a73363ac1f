"""GitHub REST API access shared by the redelivery tool and the dispatcher: auth, GHES, errors.

Credentials are a token (`GITHUB_TOKEN`) or a GitHub App installation (`GITHUB_APP_CLIENT_ID`,
`GITHUB_APP_INSTALLATION_ID`, `GITHUB_APP_PRIVATE_KEY`), never both. The API base URL is
https://api.github.com or a GitHub Enterprise Server's `https://HOST/api/v3`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests

from webhook_router.errors import RouterError

DEFAULT_API_URL = "https://api.github.com"
REQUEST_TIMEOUT_SECONDS = 10.0
APP_VARIABLES = ("GITHUB_APP_CLIENT_ID", "GITHUB_APP_INSTALLATION_ID", "GITHUB_APP_PRIVATE_KEY")
# An installation token lives one hour; renew it this long before GitHub says it expires.
TOKEN_RENEWAL_MARGIN_SECONDS = 300
# When GitHub's expiry cannot be read, assume the token is good for this long.
TOKEN_FALLBACK_LIFETIME_SECONDS = 1800
_Document = TypeVar("_Document", dict[str, Any], list[Any])


class CredentialsError(RouterError):
    """The credentials in the environment are missing, partial, both kinds, or unusable."""

    reason = "arguments"


class ApiError(RouterError):
    """GitHub's API answered with an error or could not be reached.

    Attributes:
        http_status: the HTTP status GitHub answered, None when it could not be reached.
    """

    reason = "api"

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class AppCredentials:
    """A GitHub App installation to authenticate as."""

    client_id: str
    installation_id: str
    private_key: str


Auth = str | AppCredentials


def credentials_from_env(environ: Mapping[str, str]) -> Auth | None:
    """Read the token or the GitHub App trio; None when neither is set.

    Raises:
        CredentialsError: both kinds set, or a partial App trio.
    """
    token = environ.get("GITHUB_TOKEN", "").strip()
    app = [environ.get(name, "").strip() for name in APP_VARIABLES]
    if token and any(app):
        raise CredentialsError("Give GITHUB_TOKEN or the GitHub App variables, not both")
    if token:
        return token
    if all(app):
        return AppCredentials(*app)
    if any(app):
        missing = [name for name, value in zip(APP_VARIABLES, app, strict=True) if not value]
        raise CredentialsError(f"GitHub App authentication also needs {', '.join(missing)}")
    return None


def required_credentials(environ: Mapping[str, str]) -> Auth:
    """Like credentials_from_env, for callers that cannot work unauthenticated.

    Raises:
        CredentialsError: as credentials_from_env, or neither kind is set.
    """
    auth = credentials_from_env(environ)
    if auth is None:
        raise CredentialsError(
            "Set GITHUB_TOKEN or the GitHub App variables " + ", ".join(APP_VARIABLES)
        )
    return auth


def is_api_url(url: str) -> bool:
    """Whether `url` can be an API base: http(s), a host, no query or fragment, no user."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.hostname)
        and not parts.query
        and not parts.fragment
        and parts.username is None
    )


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int] | None:
    """A URL's scheme, host and port, spelled one way: lowercase, the default port explicit.

    None for a URL with a user part, no host, or an invalid port: it matches no origin.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme, 0)


def same_origin(url: str, base: str) -> bool:
    """Whether `url` has the scheme, host and port of `base` (where a token may be sent).

    Host case and an explicit default port do not matter: `https://GHE.example.com:443` and
    `https://ghe.example.com` are one origin, as for a browser.
    """
    url_origin = origin(url)
    return url_origin is not None and url_origin == origin(base)


def normalise_api_url(url: str) -> str:
    """An API base URL with a lowercase scheme and host, no default port, no trailing slash.

    Args:
        url: a URL `is_api_url` accepts.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


class TokenSource:
    """The bearer token to send: the configured token, or a renewed App installation token.

    Thread-safe: one source serves every thread's session; an installation token is fetched
    once and renewed before it expires, so a long-running dispatcher keeps working. One thread
    renews at a time, without holding the lock the others read under: while the old token is
    still valid they keep using it, and only when there is none do they wait for the renewal.
    """

    def __init__(self, api_url: str, auth: Auth, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self._api = api_url.rstrip("/")
        self._auth = auth
        self._timeout = timeout
        self._lock = threading.Lock()
        self._renewing = threading.Lock()
        self._token: str | None = auth if isinstance(auth, str) else None
        self._renew_at = float("inf")
        self._expires_at = float("inf")
        self._generation = 0

    def token(self, session: requests.Session) -> str:
        """A token valid now; exchanges the App's credentials when needed."""
        with self._lock:
            token, now, generation = self._token, time.time(), self._generation
            if token is not None and now < self._renew_at:
                return token
            usable = token is not None and now < self._expires_at
        # Renewal due: one thread renews; the others use the old token while it lasts.
        if not self._renewing.acquire(blocking=not usable):
            assert token is not None  # noqa: S101 - usable implies a token
            return token
        try:
            with self._lock:
                if self._generation != generation and self._token is not None:
                    return self._token  # renewed by another thread while this one waited
            assert isinstance(self._auth, AppCredentials)  # noqa: S101 - token set otherwise
            renewed, renew_at, expires_at = self._installation_token(self._auth, session)
            with self._lock:
                self._token, self._renew_at, self._expires_at = renewed, renew_at, expires_at
                self._generation += 1
            return renewed
        finally:
            self._renewing.release()

    def invalidate(self, token: str) -> None:
        """Forget an installation token GitHub refused (401), so the next call renews it."""
        with self._lock:
            if isinstance(self._auth, AppCredentials) and self._token == token:
                self._token = None

    def _installation_token(
        self, app: AppCredentials, session: requests.Session
    ) -> tuple[str, float, float]:
        """A new installation token, when to renew it and when it expires."""
        now = int(time.time())
        try:
            assertion = jwt.encode(
                # Backdated a minute against clock drift; GitHub allows at most 10 minutes.
                {"iat": now - 60, "exp": now + 540, "iss": app.client_id},
                app.private_key,
                algorithm="RS256",
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise CredentialsError("GITHUB_APP_PRIVATE_KEY: not a valid RSA private key") from exc
        response = send(
            session,
            "POST",
            f"{self._api}/app/installations/{app.installation_id}/access_tokens",
            {"Accept": "application/vnd.github+json", "Authorization": f"Bearer {assertion}"},
            timeout=self._timeout,
        )
        document = json_document(response, dict)
        token = document.get("token")
        if not isinstance(token, str) or not token:
            raise ApiError("GitHub returned no installation token")
        expiry = _expiry(document.get("expires_at"), now)
        return token, expiry - TOKEN_RENEWAL_MARGIN_SECONDS, expiry


def _expiry(expires_at: object, now: int) -> float:
    try:
        return datetime.fromisoformat(str(expires_at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now + TOKEN_FALLBACK_LIFETIME_SECONDS


class GitHubClient:
    """Authenticated REST calls to one API base URL through one `requests` session.

    A session is not thread-safe: give each thread its own client, sharing one TokenSource.
    """

    def __init__(
        self,
        api_url: str,
        tokens: TokenSource | None,
        session: requests.Session,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._tokens = tokens
        self._session = session
        self._timeout = timeout

    def call(
        self, method: str, url: str, json: Mapping[str, object] | None = None
    ) -> requests.Response:
        """Send an authenticated request to a URL of the API's origin.

        Raises:
            ApiError: another origin, unreachable, or an HTTP status of 400 or more.
        """
        if not same_origin(url, self.api_url):
            raise ApiError(f"{method}: refusing to send credentials to another host")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self._tokens is None:
            return send(self._session, method, url, headers, json=json, timeout=self._timeout)
        token = self._tokens.token(self._session)
        try:
            return send(
                self._session,
                method,
                url,
                {**headers, "Authorization": f"Bearer {token}"},
                json=json,
                timeout=self._timeout,
            )
        except ApiError as exc:
            if exc.http_status == 401:
                self._tokens.invalidate(token)
            raise


def send(
    session: requests.Session,
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    json: Mapping[str, object] | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> requests.Response:
    """One request; errors name the method and path only (never a token or a body).

    Raises:
        ApiError: unreachable (status None) or an HTTP status of 400 or more.
    """
    try:
        response = session.request(method, url, headers=headers, json=json, timeout=timeout)
    except requests.RequestException as exc:
        raise ApiError(f"{method} {urlsplit(url).path}: {exc.__class__.__name__}") from exc
    if response.status_code >= 400:
        raise ApiError(
            f"{method} {urlsplit(url).path}: HTTP {response.status_code}", response.status_code
        )
    return response


def json_document(response: requests.Response, expected: type[_Document]) -> _Document:
    """The response's JSON document, which must be an `expected` (an object or an array)."""
    try:
        document = response.json()
    except ValueError as exc:
        raise ApiError("GitHub returned a body that is not JSON") from exc
    if not isinstance(document, expected):
        raise ApiError("GitHub returned an unexpected JSON document")
    return document
