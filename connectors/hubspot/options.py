"""The ``hubspot:`` section of the settings file: where the portal is, how to authenticate, what to map.

Secrets never appear here, only where to find them (an environment variable or a file), so a settings file
can be committed and printed. Every knob has a default that works for a portal set up by
``followup setup hubspot``; property names default to docs/crm-fields.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.hubspot.limits import LimiterSettings
from connectors.retry import RetrySettings
from policies.model import ContactRole, DealField

Tier = Literal["starter", "professional", "enterprise"]

# HubSpot's published per-app limits for private apps (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines):
# (per 10 seconds, per day).
TIER_LIMITS: Mapping[str, tuple[int, int]] = {
    "starter": (100, 250_000),
    "professional": (190, 625_000),
    "enterprise": (190, 1_000_000),
}

DEFAULT_DEAL_PROPERTIES: Mapping[DealField, str] = {
    DealField.NEXT_STEP: "hs_next_step",
    DealField.NEXT_STEP_WHY: "followup_next_step_why",
    DealField.NEXT_STEP_DATE: "followup_next_step_date",
    DealField.AGREED_INTERVAL_DAYS: "followup_agreed_interval_days",
    DealField.AGREED_CHANNEL: "followup_agreed_channel",
    DealField.READINESS: "followup_readiness",
    DealField.QUALIFICATION_SCORE: "followup_qualification_score",
    DealField.FOLLOWUP_STATE: "followup_state",
    DealField.FOLLOWUP_STATE_SINCE: "followup_state_since",
    DealField.FOLLOWUP_REASON: "followup_reason",
    DealField.CLOSE_REASON: "closed_lost_reason",
}

DEFAULT_ROLE_LABELS: Mapping[str, ContactRole] = {
    "Decision maker": ContactRole.DECISION_MAKER,
    "Economic buyer": ContactRole.ECONOMIC_BUYER,
    "Champion": ContactRole.CHAMPION,
    "Influencer": ContactRole.INFLUENCER,
    "Gatekeeper": ContactRole.GATEKEEPER,
    "User": ContactRole.USER,
}


class HubSpotOptions(BaseModel):
    """Everything the HubSpot connector needs to know, validated before the first call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "https://api.hubapi.com"
    # Where people open records (``followup report`` links each deal): the portal's id ("Hub ID", also
    # ``portalId`` of GET /account-info/v3/details) and the web app's address (EU portals: app-eu1).
    portal_id: int | None = Field(default=None, ge=1)
    app_url: str = "https://app.hubspot.com"

    # Private app: a static access token from the environment or a file.
    access_token_env: str | None = None
    access_token_file: str | None = None
    # Public app: OAuth refresh.
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    refresh_token_env: str | None = None
    refresh_token_file: str | None = None

    # Rate limits.
    tier: Tier = "starter"
    daily_budget_share: float = Field(default=0.5, gt=0, le=1)
    ten_second_limit: int | None = Field(default=None, ge=1)  # None: from the tier
    daily_limit: int | None = Field(default=None, ge=1)  # None: from the tier
    # Share of the 10 s window we take while HubSpot's answers show another process of the app in it (and
    # before the first answer); alone in the window the limiter takes all of it (limits.py).
    ten_second_headroom: float = Field(default=0.9, gt=0, le=1)
    search_per_second: float = Field(default=4.0, gt=0)  # HubSpot allows 5 per account
    account_time_zone: str = "UTC"  # the daily limit resets at midnight here

    # Mapping.
    deal_properties: dict[DealField, str] = Field(default_factory=lambda: dict(DEFAULT_DEAL_PROPERTIES))
    role_labels: dict[str, ContactRole] = Field(default_factory=lambda: dict(DEFAULT_ROLE_LABELS))
    primary_contact_label: str | None = None  # an association label that marks the primary contact
    owner_time_zones: dict[str, str] = Field(default_factory=dict)  # owner id or email -> IANA zone

    # Incremental pull.
    activity_lookback_days: int = Field(default=365, ge=1)  # older activities are left out of aggregates
    closed_task_lookback_days: int = Field(default=30, ge=0)  # our closed tasks still reported
    search_lookback_seconds: float = Field(default=300.0, ge=0)  # index lag: re-read this much
    search_page_size: int = Field(default=200, ge=1, le=200)
    search_result_cap: int = Field(default=10_000, ge=200)
    full_reconciliation_hours: float = Field(default=24.0, gt=0)
    deals_per_batch: int = Field(
        default=1000, ge=1
    )  # deals per ChangeBatch (1,000: one association call each)
    # contacts (with their engagements) a pull keeps for later deals of the same contact; least recently
    # used first out, read again if needed again (memory against calls: docs/configuration.md)
    contact_cache_size: int = Field(default=20_000, ge=1)

    # Transport.
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> HubSpotOptions:
        private = self.access_token_env is not None or self.access_token_file is not None
        oauth = (
            self.client_id is not None
            or self.refresh_token_env is not None
            or (self.refresh_token_file is not None)
        )
        if private and oauth:
            raise ValueError(
                "choose one way to authenticate: access_token_env/access_token_file (private app) "
                "or client_id + client_secret_* + refresh_token_* (OAuth), not both"
            )
        if not private and not oauth:
            raise ValueError("set access_token_env or access_token_file (private app), or the OAuth fields")
        if oauth:
            missing = [
                name
                for name, ok in (
                    ("client_id", self.client_id is not None),
                    (
                        "client_secret_env or client_secret_file",
                        bool(self.client_secret_env or self.client_secret_file),
                    ),
                    (
                        "refresh_token_env or refresh_token_file",
                        bool(self.refresh_token_env or self.refresh_token_file),
                    ),
                )
                if not ok
            ]
            if missing:
                raise ValueError("OAuth needs " + ", ".join(missing))
        return self

    @field_validator("owner_time_zones")
    @classmethod
    def _known_zones(cls, zones: dict[str, str]) -> dict[str, str]:
        """Every owner's zone must be one zoneinfo knows: an unknown one would fail each of their deals."""
        unknown = [f"{owner}: {zone!r}" for owner, zone in zones.items() if not _known_zone(zone)]
        if unknown:
            raise ValueError(
                "unknown time zone(s) "
                + ", ".join(unknown)
                + " (IANA names such as Europe/Berlin or America/New_York)"
            )
        return zones

    @property
    def is_oauth(self) -> bool:
        return self.client_id is not None

    @property
    def limits(self) -> tuple[int, int]:
        """(requests per 10 seconds, requests per day) for this portal."""
        ten, day = TIER_LIMITS[self.tier]
        return (self.ten_second_limit or ten, self.daily_limit or day)

    @property
    def limiter_settings(self) -> LimiterSettings:
        """The rate limiter's settings: this portal's limits, crm-followup's share of the daily one, the
        headroom below the 10-second one, the search pace and the zone the daily limit resets in."""
        ten, day = self.limits
        return LimiterSettings(
            ten_second_limit=ten,
            daily_limit=day,
            daily_share=self.daily_budget_share,
            headroom=self.ten_second_headroom,
            search_per_second=self.search_per_second,
            account_time_zone=self.account_time_zone,
        )

    def property_for(self, field: DealField) -> str:
        return self.deal_properties.get(field, DEFAULT_DEAL_PROPERTIES[field])


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
