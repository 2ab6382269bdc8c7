"""Access tokens, fetched by the connector itself with ``requests`` against the configured login URL.

simple-salesforce can log in on its own, but its token URL is hard-coded to
``https://{domain}.salesforce.com`` and its refresh loop on INVALID_SESSION_ID has no bound for ``SFType``
calls (https://github.com/simple-salesforce/simple-salesforce/blob/master/simple_salesforce/api.py). So the
connector obtains tokens here and the client door (``client.SalesforceClient``) builds
``Salesforce(instance_url=..., session_id=...)`` with them; when Salesforce answers 401 it calls
``TokenSource.fetch()`` again and rebuilds the client.

Flows (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm and the
client-credentials flow beside it): JWT bearer (RS256 assertion, ``exp`` at most 3 minutes ahead, no refresh
token), client credentials (HTTP Basic against the org's My Domain), the legacy username-password grant, and a
static token from the environment. Secrets come from environment variables or files and are never logged;
token endpoint errors are reported by their OAuth ``error`` code only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
import requests
import structlog

from connectors.errors import FixConfiguration, RetryLater
from connectors.salesforce.options import (
    AccessTokenAuth,
    ClientCredentialsAuth,
    JwtBearerAuth,
    PasswordAuth,
    SalesforceOptions,
)

log = structlog.get_logger(__name__)

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME = timedelta(minutes=3)  # Salesforce rejects assertions valid for longer


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token, the instance it is valid for (``https://host[:port]``) and whose it is.

    ``user_id`` is the integration user's id, the last part of the token response's identity URL
    (``id``: ``https://login.salesforce.com/id/<org id>/<user id>``, Salesforce's "Using Identity URLs");
    None for a static token, which comes without one.
    """

    value: str
    instance_url: str
    user_id: str | None = None

    def __repr__(self) -> str:  # never print the token itself
        return f"AccessToken(instance_url={self.instance_url!r})"


def user_of(identity: object) -> str | None:
    """The user id at the end of an identity URL (``.../id/<org id>/<user id>``), else None."""
    if not isinstance(identity, str):
        return None
    parts = identity.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "id" and parts[-1].startswith("005"):
        return parts[-1]
    return None


def read_secret(env: str | None, file: Path | None, *, what: str) -> str:
    """A secret from an environment variable or a file, stripped; names the source when it is missing."""
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise FixConfiguration(f"{what}: environment variable {env} is not set")
        return value.strip()
    if file is not None:
        try:
            return file.read_text().strip()
        except OSError as exc:
            raise FixConfiguration(f"{what}: cannot read {file}: {exc.strerror}") from None
    raise FixConfiguration(f"{what}: no source configured")


class TokenSource:
    """Fetches a new access token with the configured flow; one instance per connector."""

    def __init__(
        self,
        options: SalesforceOptions,
        session: requests.Session,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._options = options
        self._session = session
        self._clock = clock
        self.fetches = 0

    @property
    def renewable(self) -> bool:
        """Whether ``fetch`` can produce a different token than the last one."""
        return not isinstance(self._options.auth, AccessTokenAuth)

    def fetch(self) -> AccessToken:
        """A fresh token; raises ``FixConfiguration`` when the credentials are refused."""
        auth = self._options.auth
        self.fetches += 1
        if isinstance(auth, AccessTokenAuth):
            value = read_secret(auth.access_token_env, auth.access_token_file, what="salesforce access token")
            assert self._options.instance_url is not None  # enforced by SalesforceOptions
            return AccessToken(value, self._options.instance_url)
        if isinstance(auth, JwtBearerAuth):
            form, basic = self._jwt_form(auth), None
        elif isinstance(auth, ClientCredentialsAuth):
            secret = read_secret(
                auth.client_secret_env, auth.client_secret_file, what="salesforce client secret"
            )
            form, basic = {"grant_type": "client_credentials"}, (auth.client_id, secret)
        else:
            form, basic = self._password_form(auth), None
        return self._post_token(form, basic)

    def _token_url(self) -> str:
        auth = self._options.auth
        if isinstance(auth, ClientCredentialsAuth) and self._options.instance_url is not None:
            base = self._options.instance_url  # the My Domain endpoint
        else:
            base = self._options.login_url
        return f"{base}/services/oauth2/token"

    def _jwt_form(self, auth: JwtBearerAuth) -> dict[str, str]:
        key = read_secret(auth.private_key_env, auth.private_key_file, what="salesforce JWT private key")
        now = self._clock()
        claims = {
            "iss": auth.consumer_key,
            "sub": auth.username,
            "aud": auth.audience or self._options.login_url,
            "exp": int((now + JWT_LIFETIME).timestamp()),
        }
        try:
            assertion = jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            raise FixConfiguration("salesforce JWT private key: not a usable RSA private key (PEM)") from None
        return {"grant_type": JWT_GRANT, "assertion": assertion}

    def _password_form(self, auth: PasswordAuth) -> dict[str, str]:
        secret = read_secret(
            auth.consumer_secret_env, auth.consumer_secret_file, what="salesforce consumer secret"
        )
        password = read_secret(auth.password_env, auth.password_file, what="salesforce password")
        token = ""
        if auth.security_token_env is not None or auth.security_token_file is not None:
            token = read_secret(
                auth.security_token_env, auth.security_token_file, what="salesforce security token"
            )
        return {
            "grant_type": "password",
            "client_id": auth.consumer_key,
            "client_secret": secret,
            "username": auth.username,
            "password": password + token,
        }

    def _post_token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> AccessToken:
        # A transport failure propagates as the requests exception it is: the client door translates it.
        response = self._session.post(self._token_url(), data=dict(form), auth=basic)
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryLater(
                f"salesforce oauth2/token: HTTP {response.status_code}", status=response.status_code
            )
        try:
            body = response.json()
        except ValueError:
            raise RetryLater(
                f"salesforce oauth2/token: HTTP {response.status_code}: unreadable body"
            ) from None
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            code = body.get("error", "no error code") if isinstance(body, dict) else "no error code"
            raise FixConfiguration(
                f"salesforce oauth2/token: HTTP {response.status_code}: {code}: check the auth settings "
                "(consumer key, user pre-authorisation, certificate, secret)"
            )
        instance_url = str(body.get("instance_url") or self._options.instance_url or "").rstrip("/")
        if not instance_url.startswith("https://"):
            raise FixConfiguration("salesforce oauth2/token: no https instance_url; set instance_url")
        log.info("salesforce_token_fetched", flow=self._options.auth.kind, fetches=self.fetches)
        return AccessToken(
            str(body["access_token"]), self._options.instance_url or instance_url, user_of(body.get("id"))
        )
