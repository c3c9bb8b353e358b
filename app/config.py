"""Every environment variable of the runtime contract, read and validated once."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-secret-key-change-me"
DEV_ADMIN_TOKEN = "dev-admin-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    app_env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite://var/rebate.sqlite3"
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    admin_token: str = DEV_ADMIN_TOKEN
    rebate_timezone: str = "Asia/Shanghai"
    # How often the embedded default runs its timers (sweeps, resets, notifications); 0: never.
    jobs_interval_seconds: float = 5.0
    # Orders settled in one transaction by a worker: bigger batches, fewer commits per order.
    settle_batch_size: int = 500
    # Mutations one user (or one address, before login) may send a minute; 0: no limit.
    mutation_rate_limit_per_minute: int = 120

    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    wechat_mch_id: str | None = None
    wechat_pay_api_key: str | None = None
    wechat_pay_apiv3_key: str | None = None
    wechat_pay_public_key_path: str | None = None
    wechat_pay_public_key_id: str | None = None
    # The merchant's API client certificate and key (PEM files): WeChat Pay asks for them on
    # refunds and transfers (mutual TLS). Not needed by the fake WeChat.
    wechat_pay_cert_path: str | None = None
    wechat_pay_key_path: str | None = None
    wechat_api_base_url: str = "https://api.weixin.qq.com/"
    wechat_pay_api_base_url: str = "https://api.mch.weixin.qq.com/"
    wechat_notify_base_url: str | None = None
    wechat_fake: bool | None = None

    @field_validator("redis_url", "wechat_notify_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("wechat_api_base_url", "wechat_pay_api_base_url", "wechat_notify_base_url")
    @classmethod
    def _trailing_slash(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith("/"):
            value += "/"
        return value

    @field_validator("rebate_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        if self.app_env == "production":
            if self.secret_key == DEV_SECRET_KEY or self.admin_token == DEV_ADMIN_TOKEN:
                raise ValueError("production needs SECRET_KEY and ADMIN_TOKEN of its own")
            if self.fake_wechat:
                raise ValueError("production refuses the fake WeChat (WECHAT_FAKE)")
        return self

    @property
    def fake_wechat(self) -> bool:
        """The bundled fake WeChat stands in when asked, or by default in development."""
        if self.wechat_fake is not None:
            return self.wechat_fake
        return self.app_env != "production" and self.wechat_app_id is None

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.rebate_timezone)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
