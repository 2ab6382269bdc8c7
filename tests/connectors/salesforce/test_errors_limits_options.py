"""Unit tests for error translation (errors.py), budget accounting (limits.py) and options validation."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pydantic
import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import exception_handler

from connectors.errors import BudgetExhausted, FixConfiguration, RateLimited, RetryLater, SkipRecord
from connectors.salesforce.errors import SessionExpired, error_codes, translate
from connectors.salesforce.limits import ApiBudget, endpoint_of, parse_limit_info
from connectors.salesforce.options import SalesforceOptions
from policies.model import DealField

URL = "https://x.my.salesforce.com/services/data/v62.0/query/?q=SELECT+Name+FROM+Contact"
SECRET = "ada.lovelace@example.com"


def body(code: str) -> list[dict[str, str]]:
    return [{"message": f"about {SECRET}", "errorCode": code}]


def sdk_error(kind: type[SalesforceError], status: int, resource: str, content: object) -> SalesforceError:
    """The error simple-salesforce raises for an answer with this status and body, made the way it makes it:
    its ``exception_handler`` picks the class by status and passes the parsed JSON body (or the text) as
    ``content``, which its ``SalesforceError.__init__`` annotates as bytes.
    """
    response = requests.Response()
    response.status_code = status
    response.url = URL
    text = content if isinstance(content, str) else json.dumps(content)
    response.raw = io.BytesIO(text.encode())
    with pytest.raises(kind) as raised:
        exception_handler(response, resource)
    assert type(raised.value) is kind
    return raised.value


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (sdk_error(SalesforceRefusedRequest, 403, "query", body("REQUEST_LIMIT_EXCEEDED")), BudgetExhausted),
        (sdk_error(SalesforceMalformedRequest, 400, "Task", body("UNABLE_TO_LOCK_ROW")), RetryLater),
        (sdk_error(SalesforceGeneralError, 503, "query", "<html>maintenance</html>"), RetryLater),
        (sdk_error(SalesforceExpiredSession, 401, "query", body("INVALID_SESSION_ID")), SessionExpired),
        (sdk_error(SalesforceMalformedRequest, 400, "query", body("INVALID_FIELD")), FixConfiguration),
        (sdk_error(SalesforceRefusedRequest, 403, "query", body("API_DISABLED_FOR_ORG")), FixConfiguration),
        (sdk_error(SalesforceResourceNotFound, 404, "Task", body("ENTITY_IS_DELETED")), SkipRecord),
        (requests.exceptions.ConnectionError("reset"), RetryLater),
        (requests.exceptions.ChunkedEncodingError("short read"), RetryLater),
        (requests.exceptions.ReadTimeout("slow"), RetryLater),
        (requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] nope"), FixConfiguration),
    ],
)
def test_translation_names_the_next_move(exc: Exception, expected: type[Exception]) -> None:
    """Each SDK or transport error becomes the connectors.errors class for what to do next."""
    translated = translate(exc, resource="query")
    assert type(translated) is expected


def test_translated_messages_never_carry_bodies_or_urls() -> None:
    """Messages hold the resource, status and error code, never body text or the SOQL in the URL."""
    message = str(translate(sdk_error(SalesforceMalformedRequest, 400, "query", body("INVALID_FIELD"))))
    assert "INVALID_FIELD" in message
    assert "400" in message
    assert SECRET not in message
    assert "Contact" not in message


def test_budget_exhaustion_is_not_retryable_by_the_retry_layer() -> None:
    """REQUEST_LIMIT_EXCEEDED is a BudgetExhausted, which the retry layer never retries."""
    error = translate(sdk_error(SalesforceRefusedRequest, 403, "query", body("REQUEST_LIMIT_EXCEEDED")))
    assert isinstance(error, BudgetExhausted)


def test_the_concurrent_request_limit_is_a_rate_limit_the_daily_one_a_budget() -> None:
    """REQUEST_LIMIT_EXCEEDED "ConcurrentPerOrgLongTxn" clears within seconds: retried with backoff; the
    daily allocation ("TotalRequests Limit exceeded.") stops the cycle. The message text stays out of ours.
    """
    concurrent = [
        {"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    daily = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    busy = translate(sdk_error(SalesforceRefusedRequest, 403, "query", concurrent))
    spent = translate(sdk_error(SalesforceRefusedRequest, 403, "query", daily))
    assert type(busy) is RateLimited
    assert (busy.retry_after, busy.window, busy.status) == (None, None, 403)
    assert "ConcurrentPerOrgLongTxn" not in str(busy)
    assert type(spent) is BudgetExhausted


def test_error_codes_reads_collections_status_codes() -> None:
    """Per-record SaveResult errors use statusCode, REST errors errorCode: both are read."""
    assert error_codes([{"statusCode": "DUPLICATE_VALUE"}, {"errorCode": "X"}]) == ("DUPLICATE_VALUE", "X")
    assert error_codes("<html/>") == ()


def test_limit_info_header_with_and_without_per_app_part() -> None:
    """Both header forms parse; the per-app quota is read when present."""
    assert parse_limit_info("api-usage=18/5000") == ((18, 5000), None)
    assert parse_limit_info("api-usage=25/5000; per-app-api-usage=17/250(appName=cf)") == (
        (25, 5000),
        (17, 250),
    )


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://h/services/data/v62.0/query/?q=x", "query"),
        ("https://h/services/data/v62.0/queryAll?q=x", "queryAll"),
        ("https://h/services/data/v62.0/query/01gXX-2000", "query_more"),
        ("https://h/services/data/v62.0/composite/sobjects", "composite/sobjects"),
        ("https://h/services/data/v62.0/sobjects/Task/00T1", "sobjects/Task"),
        ("https://h/services/oauth2/token", None),
        ("https://h/services/Soap/m/62.0", "metadata"),
    ],
)
def test_endpoint_names_are_id_free(url: str, endpoint: str | None) -> None:
    """Calls are counted by short endpoint names; token requests are not API calls."""
    assert endpoint_of(url) == endpoint


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def response(header: str) -> requests.Response:
    r = requests.Response()
    r.status_code = 200
    r.headers["Sforce-Limit-Info"] = header
    r.url = "https://h/services/data/v62.0/query/?q=x"
    return r


def test_budget_stops_at_org_ceiling() -> None:
    """Once the org has used max_org_usage of its allocation, the next call is refused."""
    budget = ApiBudget(daily_budget_share=1.0, max_org_usage=0.9, recheck=timedelta(hours=1), clock=Clock())
    budget.observe(response("api-usage=899/1000"))
    budget.check()
    budget.observe(response("api-usage=900/1000"))
    with pytest.raises(BudgetExhausted) as info:
        budget.check()
    assert info.value.resume_at == datetime(2026, 3, 1, 1, tzinfo=UTC)


def test_budget_stops_at_own_share_and_forgets_calls_after_a_day() -> None:
    """crm-followup's own calls in the last 24 hours may not exceed its share of the allocation."""
    clock = Clock()
    budget = ApiBudget(daily_budget_share=0.002, max_org_usage=1.0, recheck=timedelta(hours=1), clock=clock)
    budget.observe(response("api-usage=10/1000"))
    budget.check()
    budget.observe(response("api-usage=11/1000"))
    with pytest.raises(BudgetExhausted):
        budget.check()
    clock.now += timedelta(hours=25)
    budget.check()
    assert budget.usage().calls_by_endpoint == {"query": 2}


def test_budget_counts_the_calls_earlier_cycles_made_in_the_last_24_hours() -> None:
    """Without a per-app header, crm-followup's share counts its earlier cycles' calls on the org (from the
    state store, whichever worker made them) as well as this connector's."""
    clock = Clock()
    asked: list[datetime] = []

    def prior(since: datetime) -> int:
        asked.append(since)
        return 9

    budget = ApiBudget(
        daily_budget_share=0.01, max_org_usage=1.0, recheck=timedelta(hours=1), clock=clock, prior=prior
    )
    budget.observe(response("api-usage=100/1000"))
    with pytest.raises(BudgetExhausted, match="has used 10 API calls in 24 h, its share is 10"):
        budget.check()
    assert asked == [clock.now - timedelta(hours=24)]


def test_options_defaults_and_validation() -> None:
    """Options fill every field name and refuse contradictory or insecure settings."""
    options = SalesforceOptions.model_validate(
        {
            "auth": {"kind": "jwt_bearer", "consumer_key": "ck", "username": "u", "private_key_env": "K"},
            "opportunity_fields": {"next_step": "Next_Step__c"},
        }
    )
    assert options.opportunity_fields[DealField.NEXT_STEP] == "Next_Step__c"
    assert options.opportunity_fields[DealField.READINESS] == "Followup_Readiness__c"
    with pytest.raises(pydantic.ValidationError, match="exactly one of private_key_env, private_key_file"):
        SalesforceOptions.model_validate(
            {"auth": {"kind": "jwt_bearer", "consumer_key": "c", "username": "u"}}
        )
    with pytest.raises(pydantic.ValidationError, match="My Domain"):
        SalesforceOptions.model_validate(
            {"auth": {"kind": "client_credentials", "client_id": "c", "client_secret_env": "S"}}
        )
    with pytest.raises(pydantic.ValidationError, match="https://"):
        SalesforceOptions.model_validate(
            {
                "login_url": "http://login.salesforce.com",
                "auth": {"kind": "access_token", "access_token_env": "T"},
            }
        )
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        SalesforceOptions.model_validate(
            {"auth": {"kind": "access_token", "access_token_env": "T"}, "colour": 1}
        )


@pytest.mark.parametrize(
    ("auth", "refused"),
    [
        ({"kind": "jwt_bearer", "consumer_key": "c", "username": "u"}, "exactly one of private_key_env"),
        (
            {
                "kind": "jwt_bearer",
                "consumer_key": "c",
                "username": "u",
                "private_key_env": "K",
                "private_key_file": "k",
            },
            "exactly one of private_key_env, private_key_file",
        ),
        (
            {"kind": "client_credentials", "client_id": "c"},
            "exactly one of client_secret_env, client_secret_file",
        ),
        (
            {"kind": "password", "consumer_key": "c", "username": "u", "password_env": "P"},
            "exactly one of consumer_secret_env, consumer_secret_file",
        ),
        (
            {"kind": "password", "consumer_key": "c", "username": "u", "consumer_secret_env": "S"},
            "exactly one of password_env, password_file",
        ),
        (
            {
                "kind": "password",
                "consumer_key": "c",
                "username": "u",
                "consumer_secret_env": "S",
                "password_file": "p",
                "security_token_env": "T",
                "security_token_file": "t",
            },
            "at most one of security_token_env, security_token_file",
        ),
        ({"kind": "access_token"}, "exactly one of access_token_env, access_token_file"),
    ],
)
def test_each_auth_secret_comes_from_one_source(auth: dict[str, str], refused: str) -> None:
    """Every secret of every flow comes from an env var or a file, never both (the optional one: at most)."""
    with pytest.raises(pydantic.ValidationError, match=refused):
        SalesforceOptions.model_validate({"auth": auth, "instance_url": MY_DOMAIN})


@pytest.mark.parametrize(
    "sources", [{"password_env": "P"}, {"password_file": "p", "security_token_file": "t"}]
)
def test_any_one_source_of_each_secret_does(sources: dict[str, str]) -> None:
    auth = {"kind": "password", "consumer_key": "c", "username": "u", "consumer_secret_file": "s", **sources}
    options = SalesforceOptions.model_validate({"auth": auth, "instance_url": MY_DOMAIN})
    assert options.auth.model_dump(mode="json", exclude_none=True) == auth


MY_DOMAIN = "https://acme.my.salesforce.com"
