"""Settings from the environment (prefix ``KOPILKA_``) and an optional ``.env`` file.

Every setting is documented in ``docs/configuration.md``; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me-kopilka-development-secret"  # noqa: S105 - the known-bad default


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KOPILKA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///kopilka.db"
    secret_key: str = DEFAULT_SECRET_KEY
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    # How long a validated API key is trusted from the in-process cache before the
    # database is asked again (revocation takes at most this long to bite).
    api_key_cache_seconds: int = Field(default=30, ge=0, le=3600)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    sqlite_busy_timeout_ms: int = Field(default=15000, ge=0)
    card_prefix: str = Field(default="77", pattern=r"^[0-9]{1,6}$")
    auto_migrate: bool | None = None  # None: only on the embedded SQLite default
    # Coupons (docs/coupons.md): unknown codes per caller per window before 429; pools
    # generated inline up to this many codes (more: in the background); the PDF sheet font.
    coupon_failure_limit: int = Field(default=20, ge=1, le=100_000)
    coupon_failure_window_seconds: int = Field(default=900, ge=10, le=86_400)
    coupon_sync_generate_max: int = Field(default=10_000, ge=1, le=1_000_000)
    coupon_pdf_font: str | None = None
    # Security (docs/security.md): personal data key ring "id:base64key,…" (the first one
    # encrypts), the blind-index key, rate-limit overrides "name=N/SECONDS,…", CORS origins.
    data_keys: str | None = None
    index_key: str | None = None
    rate_limits: str = ""
    rate_limits_enabled: bool = True
    cors_origins: str = ""
    hsts_seconds: int = Field(default=31_536_000, ge=0)
    # A request body larger than this is refused (413) before it is read; routes taking
    # larger uploads declare their own limit (``security.middleware.body_limit``).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    audit_skip: str = "/api/v1/purchases,/api/v1/events,POST /api/v1/members"
    # How long a worker holds a claimed webhook delivery before another may take it
    # (a worker killed mid-delivery is replaced after this long).
    webhook_lease_seconds: int = Field(default=60, ge=1, le=3600)
    # Webhooks (docs/webhooks.md): tries before a delivery is dead, failures in a row before
    # an endpoint is disabled, deliveries one worker sends at once.
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    webhook_disable_after_failures: int = Field(default=100, ge=1, le=100_000)
    webhook_concurrency: int = Field(default=8, ge=1, le=128)
    # How long one delivery may take (connect, send, answer) before it counts as a timeout.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # `kopilka serve` runs a worker in-process (None: only on SQLite; docs/events.md).
    embedded_worker: bool | None = None
    # The rollup leaves ledger entries younger than this for its next run, so that one
    # written by a transaction still open is not skipped (docs/reports.md).
    reports_settle_seconds: int = Field(default=120, ge=0, le=3600)
    # If set, GET /metrics requires "Authorization: Bearer <token>".
    metrics_token: str | None = None
    # Member app (docs/member-app.md): how sign-in codes reach members ("console": the
    # server's stderr, "file": appended to member_code_file; other channels register
    # themselves), device session lifetime, the public base URL of app links, the VAPID
    # contact of web push and the push services' hosts a subscription may point at.
    member_code_channel: str = "console"
    member_code_file: str = "kopilka-member-codes.log"
    member_session_days: int = Field(default=180, ge=1, le=3650)
    public_url: str | None = None
    vapid_subject: str = "mailto:kopilka@localhost"
    push_hosts: str = (
        "fcm.googleapis.com,updates.push.services.mozilla.com,push.services.mozilla.com,"
        "web.push.apple.com,notify.windows.com"
    )

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32
        ):
            raise ValueError(
                "KOPILKA_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return self

    @model_validator(mode="after")
    def _refuse_development_data_keys_in_production(self) -> Settings:
        if self.environment == "production" and not (self.data_keys and self.index_key):
            raise ValueError(
                "KOPILKA_DATA_KEYS and KOPILKA_INDEX_KEY must be set in production "
                "(`kopilka keys generate` prints fresh ones); the development keys are public"
            )
        return self

    @model_validator(mode="after")
    def _refuse_code_channel_console_in_production(self) -> Settings:
        # the console channel prints phones, emails and codes to the server's log
        if self.environment == "production" and self.member_code_channel == "console":
            raise ValueError(
                "KOPILKA_MEMBER_CODE_CHANNEL=console prints members' phones and sign-in codes "
                "to the log: in production choose a channel that delivers them (SMS, email)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.is_sqlite


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
