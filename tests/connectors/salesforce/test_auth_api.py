"""Unit tests for token fetching (auth.py) and the call wrapper (api.py): renewal and budget stops."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import Directory
from connectors.errors import BudgetExhausted, FixConfiguration
from connectors.salesforce import SalesforceConnector
from tests.connectors.salesforce.conftest import FakeClock
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce, query_page, soql_of

TOKEN = "/services/oauth2/token"
QUERY = "/services/data/v62.0/query/"
LOGIN = "https://login.example.test"


@pytest.fixture
def rsa_key(tmp_path: Path) -> tuple[Path, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "server.key"
    path.write_bytes(pem)
    return path, key.public_key()


def form_of(request: requests.PreparedRequest) -> dict[str, str]:
    raw = request.body if isinstance(request.body, str) else (request.body or b"").decode()
    return {k: v[0] for k, v in parse_qs(raw).items()}


def jwt_connector(make: Callable[..., SalesforceConnector], key_file: Path) -> SalesforceConnector:
    return make(
        instance_url=None,
        login_url=LOGIN,
        auth={
            "kind": "jwt_bearer",
            "consumer_key": "ck",
            "username": "int@x.io",
            "private_key_file": str(key_file),
        },
    )


def test_jwt_assertion_is_signed_for_the_user_and_expires_in_three_minutes(
    make_connector: Callable[..., SalesforceConnector],
    scripted: ScriptedSalesforce,
    rsa_key: tuple[Path, Any],
    clock: FakeClock,
) -> None:
    """The JWT bearer grant posts an RS256 assertion with iss, sub, aud and a short exp."""
    forms: list[dict[str, str]] = []

    def token(request: requests.PreparedRequest) -> tuple[int, Any]:
        forms.append(form_of(request))
        return 200, {
            "access_token": "00DX!a",
            "instance_url": "https://org.my.salesforce.com",
            "token_type": "Bearer",
        }

    scripted.on("POST", TOKEN, token)
    scripted.on("GET", QUERY, lambda r: (200, query_page([])))
    connector = jwt_connector(make_connector, rsa_key[0])
    before = int(time.time())
    connector.read_directory()
    after = int(time.time())
    (form,) = forms
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"], rsa_key[1], algorithms=["RS256"], audience=LOGIN, options={"verify_exp": False}
    )
    assert (claims["iss"], claims["sub"]) == ("ck", "int@x.io")
    # stamped with the machine's clock, not the cycle's: Salesforce checks it against real time
    assert before + 180 <= claims["exp"] <= after + 180
    assert claims["exp"] != int(clock().timestamp()) + 180  # the connector's injected clock
    assert scripted.seen[-1].headers["Authorization"] == "Bearer 00DX!a"


def test_expired_session_fetches_a_new_token_and_repeats_the_call(
    make_connector: Callable[..., SalesforceConnector],
    scripted: ScriptedSalesforce,
    rsa_key: tuple[Path, Any],
) -> None:
    """A 401 INVALID_SESSION_ID mid-cycle renews the token once and the call succeeds."""
    tokens = iter(["00DX!first", "00DX!second"])
    scripted.on(
        "POST",
        TOKEN,
        lambda r: (200, {"access_token": next(tokens), "instance_url": "https://org.my.salesforce.com"}),
    )

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        if request.headers["Authorization"].endswith("first"):
            return 401, [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]
        if "FROM User" not in soql_of(request):
            return 200, query_page([])
        return 200, query_page(
            [{"Id": "005A", "Name": "Rep", "TimeZoneSidKey": "Europe/Paris", "IsActive": True}]
        )

    scripted.on("GET", QUERY, query)
    connector = jwt_connector(make_connector, rsa_key[0])
    directory = connector.read_directory()
    assert directory.owners["005A"].time_zone == "Europe/Paris"
    assert connector.client.renewals == 1


def test_client_credentials_use_basic_auth_against_my_domain(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce, tmp_path: Path
) -> None:
    """The client credentials grant authenticates with HTTP Basic at the instance's token endpoint."""
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    seen: list[requests.PreparedRequest] = []

    def token(request: requests.PreparedRequest) -> tuple[int, Any]:
        seen.append(request)
        return 200, {"access_token": "00DX!cc", "instance_url": "https://org.my.salesforce.com"}

    scripted.on("POST", TOKEN, token)
    scripted.on("GET", QUERY, lambda r: (200, query_page([])))
    connector = make_connector(
        auth={"kind": "client_credentials", "client_id": "cid", "client_secret_file": str(secret)}
    )
    connector.read_directory()
    assert seen[0].url == "https://org.my.salesforce.com/services/oauth2/token"
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    assert form_of(seen[0]) == {"grant_type": "client_credentials"}


def test_refused_credentials_name_the_oauth_error_only(
    make_connector: Callable[..., SalesforceConnector],
    scripted: ScriptedSalesforce,
    rsa_key: tuple[Path, Any],
) -> None:
    """A refused grant is FixConfiguration naming the OAuth error code, not its description."""
    scripted.on(
        "POST",
        TOKEN,
        lambda r: (400, {"error": "invalid_grant", "error_description": "user int@x.io not approved"}),
    )
    with pytest.raises(FixConfiguration, match="invalid_grant") as info:
        jwt_connector(make_connector, rsa_key[0]).read_directory()
    assert "int@x.io" not in str(info.value)


def test_missing_secret_names_its_source(make_connector: Callable[..., SalesforceConnector]) -> None:
    """A secret that cannot be read says which variable or file to provide."""
    connector = make_connector(auth={"kind": "access_token", "access_token_env": "CF_TEST_UNSET_TOKEN_VAR"})
    with pytest.raises(FixConfiguration, match="CF_TEST_UNSET_TOKEN_VAR"):
        connector.read_directory()


def test_request_limit_exceeded_stops_without_retrying(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """REQUEST_LIMIT_EXCEEDED raises BudgetExhausted after exactly one call."""
    scripted.on(
        "GET",
        QUERY,
        lambda r: (
            403,
            [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
        ),
    )
    connector = make_connector()
    with pytest.raises(BudgetExhausted):
        list(connector.pull_changes(Directory(), None))
    assert connector.usage().calls == 1


def test_budget_share_stops_the_pull_before_the_next_call(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """Once the org's usage passes the ceiling, no further call is made."""
    scripted.usage[:] = [9_000, 10_000]
    scripted.on("GET", QUERY, lambda r: (200, query_page([], "/services/data/v62.0/query/01gX-2000")))
    connector = make_connector(max_org_usage=0.9)
    with pytest.raises(BudgetExhausted, match="9001 of 10000"):
        list(connector.pull_changes(Directory(), None))
    assert connector.usage().calls == 1
    assert connector.usage().daily_remaining == 999
