"""OAuth, session expiry and injected faults of the Salesforce sandbox, through simple-salesforce's own login
flows (JWT bearer, client credentials) and raw HTTPS."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests
from crm_sandbox.faults import FaultConfig
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from crm_sandbox_tests.salesforce_helpers import (
    API,
    error_objects,
    login_session,
    sobject,
    trusted_session,
)

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def box():
    with running_salesforce_sandbox(seed=3, deals=20, now=NOW) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _clean_faults(box):
    yield
    box.control.set_faults(None)
    box.control.set_clock(NOW, ticking=True)
    with trusted_session(box.ca_file) as session:
        session.post(
            f"{box.instance_url}/__sandbox__/salesforce/lock-faults", json={"unable_to_lock_row_rate": 0}
        )


@pytest.fixture
def token(box):
    """A fresh session id (another test revokes every session, including the one the sandbox printed)."""
    return box.org.issue_token()


def jwt_client(box: SalesforceSandbox, session: requests.Session) -> Salesforce:
    """simple-salesforce logged in with the JWT bearer flow, as the sandbox's integration user."""
    return Salesforce(
        username=box.username,
        consumer_key=box.consumer_key,
        privatekey_file=str(box.private_key_file),
        session=session,
    )


def test_jwt_bearer_login_through_simple_salesforce(box):
    """simple-salesforce's JWT flow logs in and gets the sandbox as its instance."""
    with login_session(box.ca_file, box.instance_url, "login.salesforce.com") as session:
        sf = jwt_client(box, session)
        assert sf.sf_instance == box.instance_url.removeprefix("https://")
        user = sf.query(f"SELECT Id, Username FROM User WHERE Username = '{box.username}'")["records"][0]
        assert user["Username"] == box.username


def test_token_response_shapes(box):
    """JWT answers the five documented keys; client credentials add issued_at and signature."""
    key = box.private_key_file.read_text()
    assertion = jwt.encode(
        {
            "iss": box.consumer_key,
            "sub": box.username,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 180,
        },
        key,
        algorithm="RS256",
    )
    with trusted_session(box.ca_file) as session:
        url = f"{box.instance_url}/services/oauth2/token"
        body = session.post(
            url, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        ).json()
        assert set(body) == {"access_token", "scope", "instance_url", "id", "token_type"}
        assert body["token_type"] == "Bearer"
        assert body["instance_url"] == box.instance_url
        cc = session.post(
            url, data={"grant_type": "client_credentials"}, auth=(box.client_id, box.client_secret)
        )
        assert {"issued_at", "signature", "access_token"} <= set(cc.json())
        bad = session.post(url, data={"grant_type": "client_credentials"}, auth=(box.client_id, "wrong"))
        assert bad.status_code == 400
        assert bad.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
        pw = session.post(
            url,
            data={
                "grant_type": "password",
                "client_id": box.client_id,
                "client_secret": box.client_secret,
                "username": box.username,
                "password": box.password,
            },
        )
        assert pw.status_code == 200


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"aud": "https://evil.example"}, "invalid assertion"),
        ({"exp": int(time.time()) - 600}, "expired authorization code"),
        ({"iss": "someone-else"}, "client identifier invalid"),
        ({"sub": "nobody@example.com"}, "user hasn't approved this consumer"),
    ],
)
def test_bad_jwt_assertions_are_refused(box, claims, description):
    """Wrong audience, expiry, issuer or user give Salesforce's OAuth errors."""
    base = {
        "iss": box.consumer_key,
        "sub": box.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    assertion = jwt.encode({**base, **claims}, box.private_key_file.read_text(), algorithm="RS256")
    with trusted_session(box.ca_file) as session:
        response = session.post(
            f"{box.instance_url}/services/oauth2/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        )
    assert response.status_code == 400
    assert response.json()["error_description"] == description


def test_simple_salesforce_reports_failed_jwt_login(box, tmp_path):
    """A key the sandbox does not know makes simple-salesforce raise SalesforceAuthenticationFailed."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with (
        login_session(box.ca_file, box.instance_url, "login.salesforce.com") as session,
        pytest.raises(SalesforceAuthenticationFailed),
    ):
        Salesforce(
            username=box.username, consumer_key=box.consumer_key, privatekey=pem.decode(), session=session
        )


def test_client_credentials_login_through_simple_salesforce(box):
    """simple-salesforce's client-credentials flow (My Domain host rewritten to the sandbox) logs in."""
    with login_session(box.ca_file, box.instance_url, "sandbox.my.salesforce.com") as session:
        sf = Salesforce(
            consumer_key=box.client_id,
            consumer_secret=box.client_secret,
            domain="sandbox.my",
            session=session,
        )
        assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 20


def test_expired_token_is_invalid_session_and_jwt_client_logs_in_again(box, token):
    """After token_ttl_s a token answers 401 INVALID_SESSION_ID; a JWT client refreshes and retries."""
    with login_session(box.ca_file, box.instance_url, "login.salesforce.com") as session:
        sf = jwt_client(box, session)
        first_token = sf.session_id
        direct = Salesforce(instance_url=box.instance_url, session_id=token, session=session)
        box.control.set_faults(FaultConfig(token_ttl_s=600))
        box.control.set_clock(datetime.now(UTC) + timedelta(hours=2), ticking=True)
        with pytest.raises(SalesforceExpiredSession) as info:
            direct.query("SELECT Id FROM User LIMIT 1")
        assert error_objects(info.value)[0]["errorCode"] == "INVALID_SESSION_ID"
        assert sf.query("SELECT COUNT() FROM User")["totalSize"] >= 1
        assert sf.session_id != first_token


def test_revoked_sessions_need_a_new_login(box):
    """The expire-sessions control route revokes every token at once."""
    with login_session(box.ca_file, box.instance_url, "login.salesforce.com") as session:
        sf = jwt_client(box, session)
        revoked = session.post(f"{box.instance_url}/__sandbox__/salesforce/expire-sessions").json()["revoked"]
        assert revoked >= 1
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] >= 1


def test_rate_limit_storm_is_request_limit_exceeded(box, token):
    """An injected storm answers 403 REQUEST_LIMIT_EXCEEDED (Salesforce has no 429)."""
    with trusted_session(box.ca_file) as session:
        sf = Salesforce(instance_url=box.instance_url, session_id=token, session=session)
        box.control.set_faults(FaultConfig(rate_limit_storm=1.0, seed=1))
        with pytest.raises(SalesforceRefusedRequest) as info:
            sf.query("SELECT Id FROM User")
        assert error_objects(info.value)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_server_errors_are_injected_deterministically(box, token):
    """error_rate=1 answers 5xx: JSON error lists for 500/503, an HTML page for 502/504."""
    with trusted_session(box.ca_file) as session:
        session.headers["Authorization"] = f"Bearer {token}"
        box.control.set_faults(FaultConfig(error_rate=1.0, seed=5))
        statuses = []
        for _ in range(8):
            response = session.get(f"{box.instance_url}/services/data/{API}/limits/")
            statuses.append(response.status_code)
            if response.status_code in (500, 503):
                assert response.json()[0]["errorCode"] in ("UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE")
        box.control.set_faults(FaultConfig(error_rate=1.0, seed=5))
        again = [session.get(f"{box.instance_url}/services/data/{API}/limits/").status_code for _ in range(8)]
        assert statuses == again
        assert set(statuses) <= {500, 502, 503, 504}
        sf = Salesforce(instance_url=box.instance_url, session_id=token, session=session)
        with pytest.raises(SalesforceGeneralError):
            sf.limits()


def test_unable_to_lock_row_fault_on_writes(box, token):
    """The Salesforce-only lock fault makes writes fail with 400 UNABLE_TO_LOCK_ROW; reads are untouched."""
    with trusted_session(box.ca_file) as session:
        sf = Salesforce(instance_url=box.instance_url, session_id=token, session=session)
        session.post(
            f"{box.instance_url}/__sandbox__/salesforce/lock-faults", json={"unable_to_lock_row_rate": 1.0}
        )
        with pytest.raises(SalesforceMalformedRequest) as info:
            sobject(sf, "Task").create({"Subject": "locked"})
        assert error_objects(info.value)[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
        assert sf.query("SELECT COUNT() FROM Task WHERE Subject = 'locked'")["totalSize"] == 0
