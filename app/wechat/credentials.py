"""The WeChat identity and hosts the product uses, resolved from the settings once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import Settings

FAKE_APP_ID = "wxfake0000000000001"
FAKE_APP_SECRET = "fake-app-secret"
FAKE_MCH_ID = "1900000001"
# WeChat Pay v2 API keys are exactly 32 characters; the fake one has the same shape.
FAKE_PAY_API_KEY = "FAKEWECHATPAYAPIKEY0123456789abc"
# So are APIv3 keys (they are the AES-256 key itself).
FAKE_APIV3_KEY = "FAKEWECHATPAYAPIV3KEY0123456789a"
FAKE_PAY_PUBLIC_KEY_ID = "FAKE_PUB_KEY_ID_0001"

NOTIFY_PATH = "wechat/pay/notify"

APIV3_KEY_BYTES = 32


@dataclass(frozen=True)
class WeChatCredentials:
    app_id: str
    app_secret: str = field(repr=False)
    mch_id: str
    api_key: str = field(repr=False)
    api_base_url: str
    pay_api_base_url: str
    notify_url: str
    # WeChat Pay v3 notifications; all None when v3 is not configured.
    apiv3_key: str | None = field(default=None, repr=False)
    pay_public_key_pem: bytes | None = field(default=None, repr=False)
    pay_public_key_id: str | None = None
    # Client certificate and key files for refunds and transfers (mutual TLS with WeChat Pay).
    mch_cert_path: str | None = None
    mch_key_path: str | None = None
    # Only the fake WeChat has the platform's private key: it signs what the product verifies.
    fake_pay_private_key_pem: bytes | None = field(default=None, repr=False)


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


@lru_cache(maxsize=1)
def fake_pay_key_pair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of the fake platform key, made once per process.

    Generating an RSA 2048 key takes tens of milliseconds, and credentials are resolved for
    every app a test suite builds.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def _read_public_key(path: str) -> bytes:
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"WECHAT_PAY_PUBLIC_KEY_PATH {path!r} cannot be read: {exc}") from exc
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"WECHAT_PAY_PUBLIC_KEY_PATH {path!r} is not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"WECHAT_PAY_PUBLIC_KEY_PATH {path!r} is not an RSA public key")
    return pem


def _check_apiv3_key(key: str) -> str:
    if len(key.encode("utf-8")) != APIV3_KEY_BYTES:
        raise ValueError(f"WECHAT_PAY_APIV3_KEY must be {APIV3_KEY_BYTES} bytes")
    return key


def _v3_side(
    settings: Settings,
) -> tuple[str | None, bytes | None, str | None, bytes | None]:
    """(APIv3 key, platform public key PEM, its id, the fake's private key PEM)."""
    apiv3_key = settings.wechat_pay_apiv3_key or None
    key_path = settings.wechat_pay_public_key_path or None
    key_id = settings.wechat_pay_public_key_id or None
    if (key_path is None) != (key_id is None):
        # The id is how a notification names its key: one without the other verifies nothing.
        raise ValueError("WECHAT_PAY_PUBLIC_KEY_PATH and WECHAT_PAY_PUBLIC_KEY_ID go together")
    if settings.fake_wechat:
        apiv3_key = _check_apiv3_key(apiv3_key or FAKE_APIV3_KEY)
        if key_path is not None and key_id is not None:
            return apiv3_key, _read_public_key(key_path), key_id, None
        private_pem, public_pem = fake_pay_key_pair()
        return apiv3_key, public_pem, FAKE_PAY_PUBLIC_KEY_ID, private_pem
    if apiv3_key is None and key_path is None:
        return None, None, None, None
    if apiv3_key is None or key_path is None:
        raise ValueError(
            "WeChat Pay v3 needs WECHAT_PAY_APIV3_KEY, WECHAT_PAY_PUBLIC_KEY_PATH and "
            "WECHAT_PAY_PUBLIC_KEY_ID together"
        )
    return _check_apiv3_key(apiv3_key), _read_public_key(key_path), key_id, None


def resolve_credentials(settings: Settings, public_base_url: str) -> WeChatCredentials:
    """Credentials from the settings; with the fake WeChat, its defaults and its hosts under /mock/.

    `public_base_url` is this server's own base URL ("http://127.0.0.1:8000/").
    """
    public_base_url = _with_slash(public_base_url)
    notify_url = (settings.wechat_notify_base_url or public_base_url) + NOTIFY_PATH
    if settings.fake_wechat:
        apiv3_key, public_pem, public_key_id, fake_private_pem = _v3_side(settings)
        return WeChatCredentials(
            app_id=settings.wechat_app_id or FAKE_APP_ID,
            app_secret=settings.wechat_app_secret or FAKE_APP_SECRET,
            mch_id=settings.wechat_mch_id or FAKE_MCH_ID,
            api_key=settings.wechat_pay_api_key or FAKE_PAY_API_KEY,
            api_base_url=public_base_url + "mock/wx/",
            pay_api_base_url=public_base_url + "mock/pay/",
            notify_url=notify_url,
            mch_cert_path=settings.wechat_pay_cert_path,
            mch_key_path=settings.wechat_pay_key_path,
            apiv3_key=apiv3_key,
            pay_public_key_pem=public_pem,
            pay_public_key_id=public_key_id,
            fake_pay_private_key_pem=fake_private_pem,
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
    apiv3_key, public_pem, public_key_id, _ = _v3_side(settings)
    return WeChatCredentials(
        app_id=str(settings.wechat_app_id),
        app_secret=str(settings.wechat_app_secret),
        mch_id=str(settings.wechat_mch_id),
        api_key=str(settings.wechat_pay_api_key),
        api_base_url=_with_slash(settings.wechat_api_base_url),
        pay_api_base_url=_with_slash(settings.wechat_pay_api_base_url),
        notify_url=notify_url,
        mch_cert_path=settings.wechat_pay_cert_path,
        mch_key_path=settings.wechat_pay_key_path,
        apiv3_key=apiv3_key,
        pay_public_key_pem=public_pem,
        pay_public_key_id=public_key_id,
    )
