"""The ``retry:`` block of a connector's settings section (``hubspot:`` or ``salesforce:``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from connectors.retry import RetrySettings

__all__ = ["RetryOptions"]


class RetryOptions(BaseModel):
    """The knobs of the one retry layer (connectors/retry.py), as settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=6, ge=1, le=20)  # tries of a call on 5xx, timeouts, dropped connections
    rate_limit_attempts: int = Field(default=30, ge=1, le=200)  # tries while the CRM answers "rate limited"
    initial_wait: float = Field(default=0.5, ge=0, le=3600)  # seconds: ceiling of the first backoff
    max_wait: float = Field(default=30.0, ge=0, le=3600)  # longest backoff or rate-limit window wait
    max_total: float = Field(default=120.0, gt=0, le=86_400)  # most one call may spend waiting
    jitter_seed: int | None = None

    def to_settings(self) -> RetrySettings:
        return RetrySettings(
            attempts=self.attempts,
            initial_wait=self.initial_wait,
            max_wait=self.max_wait,
            max_total=self.max_total,
            jitter_seed=self.jitter_seed,
            rate_limit_attempts=self.rate_limit_attempts,
        )
