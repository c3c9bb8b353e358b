"""Credentials and hosts resolved from the settings, with and without the fake WeChat."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.wechat.credentials import (
    FAKE_APP_ID,
    FAKE_APP_SECRET,
    FAKE_MCH_ID,
    FAKE_PAY_API_KEY,
    resolve_credentials,
)

REAL = {
    "wechat_app_id": "wx1234567890abcdef",
    "wechat_app_secret": "real-secret",
    "wechat_mch_id": "1600000000",
    "wechat_pay_api_key": "K" * 32,
}


def test_fake_defaults_and_hosts() -> None:
    creds = resolve_credentials(
        Settings(app_env="test", wechat_fake=True), "http://127.0.0.1:8000/"
    )
    assert creds.app_id == FAKE_APP_ID
    assert creds.app_secret == FAKE_APP_SECRET
    assert creds.mch_id == FAKE_MCH_ID
    assert creds.api_key == FAKE_PAY_API_KEY
    assert len(FAKE_PAY_API_KEY) == 32
    assert creds.api_base_url == "http://127.0.0.1:8000/mock/wx/"
    assert creds.pay_api_base_url == "http://127.0.0.1:8000/mock/pay/"
    assert creds.notify_url == "http://127.0.0.1:8000/wechat/pay/notify"


def test_fake_keeps_configured_values_and_notify_base() -> None:
    settings = Settings(
        app_env="test",
        wechat_fake=True,
        wechat_app_id="wxmine",
        wechat_notify_base_url="https://shop.example.com",
    )
    creds = resolve_credentials(settings, "http://127.0.0.1:8000")
    assert creds.app_id == "wxmine"
    assert creds.mch_id == FAKE_MCH_ID
    assert creds.api_base_url == "http://127.0.0.1:8000/mock/wx/"
    assert creds.notify_url == "https://shop.example.com/wechat/pay/notify"


def test_real_credentials_come_from_settings() -> None:
    settings = Settings(
        app_env="test",
        wechat_fake=False,
        wechat_api_base_url="https://wx.example.com/",
        wechat_pay_api_base_url="https://pay.example.com/",
        **REAL,
    )
    creds = resolve_credentials(settings, "http://127.0.0.1:8000/")
    assert (creds.app_id, creds.app_secret, creds.mch_id, creds.api_key) == tuple(REAL.values())
    assert creds.api_base_url == "https://wx.example.com/"
    assert creds.pay_api_base_url == "https://pay.example.com/"
    assert creds.notify_url == "http://127.0.0.1:8000/wechat/pay/notify"
    assert "real-secret" not in repr(creds)
    assert "K" * 32 not in repr(creds)


def test_real_wechat_without_credentials_is_refused() -> None:
    settings = Settings(app_env="test", wechat_fake=False, wechat_app_id="wx1")
    with pytest.raises(ValueError, match="WECHAT_APP_SECRET"):
        resolve_credentials(settings, "http://127.0.0.1:8000/")
