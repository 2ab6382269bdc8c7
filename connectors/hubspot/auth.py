"""Where the access token comes from: a private app's static token, or an OAuth refresh for public apps.

Secrets are read from the environment or a file named in the settings, at connector build time (never at
import), and are never logged or put in error messages: errors name the variable or file, not the value. An
OAuth access token is refreshed shortly before it expires (HubSpot says a 401 alone is no reason to refresh,
https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines), by an injected refresh call:
the SDK's ``oauth.tokens_api`` behind the client door (``client.sdk_refresh_call``), so this module imports
neither the SDK nor the client.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from connectors.errors import FixConfiguration
from connectors.hubspot.options import HubSpotOptions

REFRESH_MARGIN_SECONDS = 300.0


def read_secret(
    env: str | None, file: str | None, what: str, environ: Mapping[str, str] | None = None
) -> str:
    """The secret named by an environment variable or a file; ``FixConfiguration`` saying which is empty."""
    environ = os.environ if environ is None else environ
    if env is not None:
        value = environ.get(env, "").strip()
        if not value:
            raise FixConfiguration(f"the environment variable {env} ({what}) is not set or empty")
        return value
    if file is not None:
        try:
            value = Path(file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise FixConfiguration(f"cannot read {what} from {file}: {exc.strerror}") from None
        if not value:
            raise FixConfiguration(f"{file} ({what}) is empty")
        return value
    raise FixConfiguration(f"no source configured for {what}")


class TokenSource(Protocol):
    def token(self) -> str:
        """A currently valid access token."""
        ...


class StaticToken:
    """A private app's access token: it does not expire on its own."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(***)"


RefreshCall = Callable[[str, str, str], Mapping[str, Any]]  # (client_id, secret, refresh) -> token JSON


class OAuthRefresher:
    """Keeps an OAuth access token fresh by the refresh-token grant; the call is injected (the SDK's)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        refresh: RefreshCall,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_id = client_id
        self._secret = client_secret
        self._refresh_token = refresh_token
        self._refresh = refresh
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0

    def token(self) -> str:
        if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_SECONDS:
            payload = self._refresh(self._client_id, self._secret, self._refresh_token)
            access = payload.get("access_token")
            if not isinstance(access, str) or not access:
                raise FixConfiguration("HubSpot OAuth refresh returned no access token; re-authorise the app")
            self._token = access
            self._expires_at = self._clock() + float(payload.get("expires_in") or 1800)
            new_refresh = payload.get("refresh_token")
            if isinstance(new_refresh, str) and new_refresh:
                self._refresh_token = new_refresh
            self.refreshes += 1
        return self._token

    def __repr__(self) -> str:
        return "OAuthRefresher(***)"


def build_token_source(
    options: HubSpotOptions,
    *,
    refresh: RefreshCall,
    clock: Callable[[], float] = time.monotonic,
    environ: Mapping[str, str] | None = None,
) -> TokenSource:
    """The token source the settings describe; reads secrets now, so a missing one fails at build time.

    ``refresh`` is the refresh-token grant (``client.sdk_refresh_call``: the SDK's, behind the client door),
    used only for OAuth.
    """
    if not options.is_oauth:
        return StaticToken(
            read_secret(options.access_token_env, options.access_token_file, "HubSpot access token", environ)
        )
    assert options.client_id is not None
    secret = read_secret(
        options.client_secret_env, options.client_secret_file, "HubSpot client secret", environ
    )
    refresh_token = read_secret(
        options.refresh_token_env, options.refresh_token_file, "HubSpot refresh token", environ
    )
    return OAuthRefresher(options.client_id, secret, refresh_token, refresh, clock)
