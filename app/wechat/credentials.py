"""The WeChat identity and hosts the product uses, resolved from the settings once."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.config import Settings

FAKE_APP_ID = "wxfake0000000000001"
FAKE_APP_SECRET = "fake-app-secret"
FAKE_MCH_ID = "1900000001"
# WeChat Pay v2 API keys are exactly 32 characters; the fake one has the same shape.
FAKE_PAY_API_KEY = "FAKEWECHATPAYAPIKEY0123456789abc"

NOTIFY_PATH = "wechat/pay/notify"


@dataclass(frozen=True)
class WeChatCredentials:
    app_id: str
    app_secret: str = field(repr=False)
    mch_id: str
    api_key: str = field(repr=False)
    api_base_url: str
    pay_api_base_url: str
    notify_url: str


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def resolve_credentials(settings: Settings, public_base_url: str) -> WeChatCredentials:
    """Credentials from the settings; with the fake WeChat, its defaults and its hosts under /mock/.

    `public_base_url` is this server's own base URL ("http://127.0.0.1:8000/").
    """
    public_base_url = _with_slash(public_base_url)
    notify_url = (settings.wechat_notify_base_url or public_base_url) + NOTIFY_PATH
    if settings.fake_wechat:
        return WeChatCredentials(
            app_id=settings.wechat_app_id or FAKE_APP_ID,
            app_secret=settings.wechat_app_secret or FAKE_APP_SECRET,
            mch_id=settings.wechat_mch_id or FAKE_MCH_ID,
            api_key=settings.wechat_pay_api_key or FAKE_PAY_API_KEY,
            api_base_url=public_base_url + "mock/wx/",
            pay_api_base_url=public_base_url + "mock/pay/",
            notify_url=notify_url,
        )
    required = {
        "WECHAT_APP_ID": settings.wechat_app_id,
        "WECHAT_APP_SECRET": settings.wechat_app_secret,
        "WECHAT_MCH_ID": settings.wechat_mch_id,
        "WECHAT_PAY_API_KEY": settings.wechat_pay_api_key,
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        # Calling the real WeChat with empty credentials would only fail later and less clearly.
        raise ValueError(f"the real WeChat needs {', '.join(missing)} (or WECHAT_FAKE=true)")
    return WeChatCredentials(
        app_id=str(settings.wechat_app_id),
        app_secret=str(settings.wechat_app_secret),
        mch_id=str(settings.wechat_mch_id),
        api_key=str(settings.wechat_pay_api_key),
        api_base_url=_with_slash(settings.wechat_api_base_url),
        pay_api_base_url=_with_slash(settings.wechat_pay_api_base_url),
        notify_url=notify_url,
    )
