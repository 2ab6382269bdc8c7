"""The ``salesforce:`` section of the settings file: where the org is, how to authenticate, what to map.

Secrets never appear here, only where to find them (an environment variable or a file), so a settings file
can be committed and printed. Field names default to docs/crm-fields.md; every canonical ``DealField`` can
be mapped to another Opportunity field.

Authentication is one of (``auth.kind``):

* ``jwt_bearer``: the recommended flow for a daemon (a connected app / external client app with a
  certificate, the user pre-authorised). No refresh token: the connector signs a new assertion whenever
  Salesforce answers INVALID_SESSION_ID.
* ``client_credentials``: a "Run As" integration user; the token endpoint is the org's My Domain, so
  ``instance_url`` (or ``login_url``) must be the My Domain URL, not login.salesforce.com.
* ``password``: the legacy OAuth username-password flow, being retired by Salesforce; kept for old orgs.
* ``access_token``: a token obtained elsewhere (sandboxes, scripts); it cannot be renewed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.retry import RetrySettings
from policies.model import ContactRole, DealField

DEFAULT_OPPORTUNITY_FIELDS: Mapping[DealField, str] = {
    DealField.NEXT_STEP: "NextStep",
    DealField.NEXT_STEP_WHY: "Followup_Next_Step_Why__c",
    DealField.NEXT_STEP_DATE: "Followup_Next_Step_Date__c",
    DealField.AGREED_INTERVAL_DAYS: "Followup_Agreed_Interval_Days__c",
    DealField.AGREED_CHANNEL: "Followup_Agreed_Channel__c",
    DealField.READINESS: "Followup_Readiness__c",
    DealField.QUALIFICATION_SCORE: "Followup_Qualification_Score__c",
    DealField.FOLLOWUP_STATE: "Followup_State__c",
    DealField.FOLLOWUP_STATE_SINCE: "Followup_State_Since__c",
    DealField.FOLLOWUP_REASON: "Followup_Reason__c",
    DealField.CLOSE_REASON: "Followup_Close_Reason__c",
}

DEFAULT_ROLES: Mapping[str, ContactRole] = {
    "Decision Maker": ContactRole.DECISION_MAKER,
    "Executive Sponsor": ContactRole.DECISION_MAKER,
    "Economic Buyer": ContactRole.ECONOMIC_BUYER,
    "Economic Decision Maker": ContactRole.ECONOMIC_BUYER,
    "Champion": ContactRole.CHAMPION,
    "Influencer": ContactRole.INFLUENCER,
    "Evaluator": ContactRole.INFLUENCER,
    "Technical Buyer": ContactRole.INFLUENCER,
    "Gatekeeper": ContactRole.GATEKEEPER,
    "Business User": ContactRole.USER,
    "Other": ContactRole.OTHER,
}

_API_VERSION = r"^\d{2,3}\.0$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Auth(_Frozen):
    """An auth flow whose secrets each come from an environment variable or a file: exactly one of
    ``<secret>_env`` and ``<secret>_file`` for each of ``_secrets``, at most one for each of ``_optional``."""

    _secrets: ClassVar[tuple[str, ...]] = ()
    _optional: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _one_source_each(self) -> Self:
        for secret in (*self._secrets, *self._optional):
            sources = f"{secret}_env", f"{secret}_file"
            given = sum(getattr(self, source) is not None for source in sources)
            if given > 1 or (given == 0 and secret in self._secrets):
                exactly = "exactly" if secret in self._secrets else "at most"
                raise ValueError(f"set {exactly} one of {', '.join(sources)}")
        return self


class JwtBearerAuth(_Auth):
    """OAuth 2.0 JWT bearer flow: a signed assertion for ``username``, no stored token."""

    _secrets = ("private_key",)

    kind: Literal["jwt_bearer"] = "jwt_bearer"
    consumer_key: str = Field(min_length=1)
    username: str = Field(min_length=1)
    private_key_file: Path | None = None
    private_key_env: str | None = None  # an environment variable holding the PEM text
    audience: str | None = None  # None: login_url (https://test.salesforce.com for sandbox orgs)


class ClientCredentialsAuth(_Auth):
    """OAuth 2.0 client credentials flow: the connected app runs as its configured integration user."""

    _secrets = ("client_secret",)

    kind: Literal["client_credentials"] = "client_credentials"
    client_id: str = Field(min_length=1)
    client_secret_env: str | None = None
    client_secret_file: Path | None = None


class PasswordAuth(_Auth):
    """Legacy OAuth username-password flow (Salesforce is retiring it: prefer jwt_bearer)."""

    _secrets = ("consumer_secret", "password")
    _optional = ("security_token",)

    kind: Literal["password"] = "password"
    consumer_key: str = Field(min_length=1)
    consumer_secret_env: str | None = None
    consumer_secret_file: Path | None = None
    username: str = Field(min_length=1)
    password_env: str | None = None
    password_file: Path | None = None
    security_token_env: str | None = None  # appended to the password when the org requires it
    security_token_file: Path | None = None


class AccessTokenAuth(_Auth):
    """A session id obtained elsewhere (a sandbox, ``sf org display``); it expires and cannot be renewed."""

    _secrets = ("access_token",)

    kind: Literal["access_token"] = "access_token"
    access_token_env: str | None = None
    access_token_file: Path | None = None


AuthOptions = Annotated[
    JwtBearerAuth | ClientCredentialsAuth | PasswordAuth | AccessTokenAuth, Field(discriminator="kind")
]


class SalesforceOptions(_Frozen):
    """Everything the Salesforce connector needs to know, validated before the first call."""

    instance_url: str | None = None  # https://mycompany.my.salesforce.com; None: from the token response
    login_url: str = "https://login.salesforce.com"  # https://test.salesforce.com for sandbox orgs
    api_version: str = Field(default="62.0", pattern=_API_VERSION)
    auth: AuthOptions
    ca_file: Path | None = None  # a CA bundle for sandboxes and TLS-inspecting corporate proxies

    # Mapping.
    opportunity_fields: dict[DealField, str] = Field(default_factory=lambda: dict(DEFAULT_OPPORTUNITY_FIELDS))
    task_key_field: str = "Followup_Key__c"
    task_rule_field: str = "Followup_Rule__c"
    contact_roles: dict[str, ContactRole] = Field(default_factory=lambda: dict(DEFAULT_ROLES))
    pipeline_id: str = "default"  # Salesforce has one stage list: it becomes one pipeline with this id
    pipeline_label: str = "Opportunities"
    # StageName -> the stage id the policies use, so that one policy serves HubSpot and Salesforce
    # (e.g. {"Closed Lost": closedlost}); a stage not listed keeps its StageName as its id.
    stage_ids: dict[str, str] = Field(default_factory=dict)
    open_task_status: str = "Not Started"
    closed_task_status: str = "Completed"
    nurture_member_status: str = "Nurture"
    responded_member_status: str = "Responded"
    default_time_zone: str = "UTC"  # for owners whose TimeZoneSidKey cannot be read

    # API budget (rolling 24 hours, shared with every integration of the org).
    daily_budget_share: float = Field(default=0.25, gt=0, le=1)  # crm-followup's share of the allocation
    max_org_usage: float = Field(default=0.9, gt=0, le=1)  # stop when the whole org has used this much
    budget_recheck: timedelta = timedelta(hours=1)  # when to try again after the budget stopped a cycle

    # Pull.
    query_batch_size: int = Field(default=2000, ge=200, le=2000)  # Sforce-Query-Options batchSize
    ids_per_query: int = Field(default=500, ge=1, le=500)  # Id IN (...) lists: URI + headers under 16 kB
    # query pages read in one Composite call (independent queries, and consecutive pages of one query
    # chained by Query More): Salesforce allows 5 query operations per call. With 5 x batchSize 2000 rows
    # of opportunities with subqueries one response carries up to 10,000 rows; lower this (or
    # query_batch_size) if the org answers slowly or times out. 1 sends each page as a call of its own.
    queries_per_call: int = Field(default=5, ge=1, le=5)
    activities_per_deal: int = Field(default=200, ge=1, le=2000)  # newest Tasks/Events per opportunity
    cursor_overlap: timedelta = timedelta(minutes=2)  # re-read this much behind each SystemModstamp cursor
    # a full pull at least this often even if the caller never asks for one (the worker asks, cursor=None,
    # every full_pull_every): a safety net, so longer than the worker's default of 24 hours
    reconciliation_interval: timedelta = timedelta(days=7)
    deals_per_batch: int = Field(default=2000, ge=1)

    # Write.
    write_batch_size: int = Field(default=200, ge=1, le=200)  # sObject Collections take at most 200

    # Transport.
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    retry: RetrySettings = RetrySettings()

    @field_validator("instance_url", "login_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("https://"):
            raise ValueError("must start with https:// (simple-salesforce builds every URL with https)")
        return value.rstrip("/")

    @field_validator("opportunity_fields")
    @classmethod
    def _complete_fields(cls, value: dict[DealField, str]) -> dict[DealField, str]:
        return {**DEFAULT_OPPORTUNITY_FIELDS, **value}

    @model_validator(mode="after")
    def _client_credentials_need_my_domain(self) -> SalesforceOptions:
        if (
            isinstance(self.auth, ClientCredentialsAuth)
            and self.instance_url is None
            and (self.login_url in {"https://login.salesforce.com", "https://test.salesforce.com"})
        ):
            raise ValueError(
                "auth.kind client_credentials: set instance_url to the org's My Domain URL "
                "(Salesforce refuses this flow on login.salesforce.com / test.salesforce.com)"
            )
        if isinstance(self.auth, AccessTokenAuth) and self.instance_url is None:
            raise ValueError("auth.kind access_token: set instance_url")
        return self

    def field_for(self, field: DealField) -> str:
        """The Opportunity field that holds a canonical deal field."""
        return self.opportunity_fields[field]
