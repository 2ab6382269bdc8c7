"""The OAuth 2.0 token endpoint and the access tokens it issues.

Grants (``POST /services/oauth2/token``, form-encoded):
- ``urn:ietf:params:oauth:grant-type:jwt-bearer``: an RS256 assertion signed with the private key of the
  key pair the sandbox makes at start-up (``private_key_pem`` is what a client passes to simple-salesforce);
  ``iss`` must be the consumer key, ``sub`` an active username, ``aud`` login/test.salesforce.com or the
  instance, ``exp`` in the future (checked against real time: clients stamp it from their own clock).
  Answer as documented: access_token, scope, instance_url, id, token_type; no refresh token, no expires_in.
- ``client_credentials``: HTTP Basic ``client_id:client_secret`` (what simple-salesforce sends) or form
  fields; also answers ``issued_at`` and ``signature``.
- ``password`` (legacy username-password flow): client id/secret plus username and password.
Failures are OAuth bodies ``{"error", "error_description"}`` with status 400.

Tokens look like Salesforce session ids (``00D...!...``). A token is rejected (401 INVALID_SESSION_ID) when
unknown, revoked through the control route, or older than ``FaultConfig.token_ttl_s`` on the sandbox clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What clients need to log in to this sandbox."""

    username: str
    password: str
    consumer_key: str
    private_key_pem: str
    client_id: str
    client_secret: str


def make_credentials(username: str) -> tuple[Credentials, Any]:
    """Fresh credentials and the public key that verifies JWT assertions."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    creds = Credentials(
        username=username,
        password=secrets.token_urlsafe(12),
        consumer_key="3MVG9" + secrets.token_urlsafe(60).replace("-", "A").replace("_", "B")[:80],
        private_key_pem=pem,
        client_id="3MVG9" + secrets.token_urlsafe(40).replace("-", "C").replace("_", "D")[:60],
        client_secret=secrets.token_hex(32).upper(),
    )
    return creds, key.public_key()


@dataclass(frozen=True, slots=True)
class Token:
    user_id: str
    issued_at: datetime


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class TokenRegistry:
    """Issued access tokens; thread-safe."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def issue(self, user_id: str, now: datetime) -> str:
        token = f"{self.org_id[:15]}!AQ" + secrets.token_urlsafe(72)
        with self._lock:
            self._tokens[token] = Token(user_id, now)
        return token

    def lookup(self, token: str) -> Token | None:
        with self._lock:
            return self._tokens.get(token)

    def revoke_all(self) -> int:
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
            return count


class TokenEndpoint:
    """Checks a grant and issues a token; ``user_ids`` maps active usernames to User ids."""

    def __init__(
        self,
        creds: Credentials,
        public_key: Any,
        registry: TokenRegistry,
        user_ids: Callable[[], Mapping[str, str]],
        now: Callable[[], datetime],
    ) -> None:
        self.creds = creds
        self.public_key = public_key
        self.registry = registry
        self.user_ids = user_ids
        self.now = now

    def grant(self, form: Mapping[str, str], authorization: str | None, instance_url: str) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_GRANT:
            user_id = self._jwt_user(form.get("assertion", ""), instance_url)
            return self._answer(user_id, instance_url, signed=False)
        if grant_type == "client_credentials":
            self._check_client(form, authorization)
            return self._answer(self._user(self.creds.username), instance_url, signed=True)
        if grant_type == "password":
            self._check_client(form, None)
            if form.get("username") != self.creds.username or form.get("password") != self.creds.password:
                raise OAuthError("invalid_grant", "authentication failure")
            return self._answer(self._user(self.creds.username), instance_url, signed=True)
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def _user(self, username: str) -> str:
        user_id = self.user_ids().get(username)
        if user_id is None:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return user_id

    def _jwt_user(self, assertion: str, instance_url: str) -> str:
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=[*AUDIENCES, instance_url],
                options={"require": ["iss", "sub", "aud", "exp"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.InvalidTokenError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if claims["iss"] != self.creds.consumer_key:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if float(claims["exp"]) > time.time() + 300:  # simple-salesforce sends exp as a string
            raise OAuthError("invalid_grant", "invalid assertion")  # Salesforce wants exp within minutes
        return self._user(str(claims["sub"]))

    def _check_client(self, form: Mapping[str, str], authorization: str | None) -> None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except ValueError:
                raise OAuthError("invalid_client", "invalid client credentials") from None
            client_id, _, secret = decoded.partition(":")
        known = {
            (self.creds.client_id, self.creds.client_secret),
            (self.creds.consumer_key, self.creds.client_secret),
        }
        if (client_id, secret) not in known:
            raise OAuthError("invalid_client", "invalid client credentials")

    def _answer(self, user_id: str, instance_url: str, *, signed: bool) -> dict[str, Any]:
        now = self.now()
        token = self.registry.issue(user_id, now)
        identity = f"https://login.salesforce.com/id/{self.registry.org_id}/{user_id}"
        body: dict[str, Any] = {
            "access_token": token,
            "scope": "api",
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
        }
        if signed:
            issued_at = str(int(now.timestamp() * 1000))
            digest = hmac.new(
                self.creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
            body["issued_at"] = issued_at
            body["signature"] = base64.b64encode(digest).decode()
        return body
