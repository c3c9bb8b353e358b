"""WeChat Pay v3 payment notifications: signature, freshness, AES-GCM resource, business checks."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.wechat.credentials import APIV3_KEY_BYTES, WeChatCredentials
from app.wechat.pay_notify import WECHAT_TZ, InvalidNotification, PaymentNotice

# Real notifications are about 1 KB; anything far larger is not WeChat.
MAX_V3_BODY_BYTES = 64 * 1024
MAX_CLOCK_SKEW = timedelta(minutes=5)

TIMESTAMP_HEADER = "wechatpay-timestamp"
NONCE_HEADER = "wechatpay-nonce"
SIGNATURE_HEADER = "wechatpay-signature"
SERIAL_HEADER = "wechatpay-serial"
_REQUIRED_HEADERS = (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER, SERIAL_HEADER)

PAYMENT_EVENT = "TRANSACTION.SUCCESS"
RESOURCE_ALGORITHM = "AEAD_AES_256_GCM"
# Unix seconds: ten digits until the year 2286; a bound keeps int() away from huge strings.
_MAX_TIMESTAMP_DIGITS = 12


@lru_cache(maxsize=8)
def _public_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the WeChat Pay platform public key is not an RSA key")
    return key


def v3_signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay v3 signs: `timestamp\\nnonce\\nbody\\n`."""
    return timestamp.encode("utf-8") + b"\n" + nonce.encode("utf-8") + b"\n" + body + b"\n"


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    # HTTP header names are case-insensitive; a plain dict from a test or a framework is not.
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in _REQUIRED_HEADERS if not lowered.get(name, "").strip()]
    if missing:
        raise InvalidNotification(f"missing header(s): {', '.join(missing)}")
    return {name: lowered[name].strip() for name in _REQUIRED_HEADERS}


def _verify_signature(public_pem: bytes, signature_b64: str, message: bytes) -> None:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidNotification("bad signature: not base64") from None
    try:
        _public_key(public_pem).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise InvalidNotification("bad signature") from None


def _check_timestamp(value: str, now: datetime) -> None:
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_TIMESTAMP_DIGITS:
        raise InvalidNotification(f"Wechatpay-Timestamp is not unix seconds: {value!r}")
    skew = abs(now.timestamp() - int(value))
    # Replaying a captured notification later is what the window stops.
    if skew > MAX_CLOCK_SKEW.total_seconds():
        raise InvalidNotification(f"stale timestamp: {int(skew)} s away from our clock")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise InvalidNotification(f"malformed JSON in the {what}") from None
    if not isinstance(value, dict):
        raise InvalidNotification(f"the {what} is not a JSON object")
    return value


def _text(mapping: Mapping[str, Any], name: str, where: str) -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidNotification(f"missing field {where}{name}")
    return value


def _fen(mapping: Mapping[str, Any], name: str, where: str) -> int:
    value = mapping.get(name)
    # bool is an int to Python, and JSON floats are never fen.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidNotification(f"{where}{name} is not a non-negative integer: {value!r}")
    return value


def _decrypt_resource(resource: Mapping[str, Any], apiv3_key: str) -> bytes:
    algorithm = resource.get("algorithm")
    if algorithm != RESOURCE_ALGORITHM:
        raise InvalidNotification(f"resource.algorithm is {algorithm!r}, not {RESOURCE_ALGORITHM}")
    ciphertext_b64 = _text(resource, "ciphertext", "resource.")
    nonce = _text(resource, "nonce", "resource.")
    associated_data = resource.get("associated_data") or ""
    if not isinstance(associated_data, str):
        raise InvalidNotification("resource.associated_data is not a string")
    try:
        ciphertext = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidNotification("resource.ciphertext is not base64") from None
    key = apiv3_key.encode("utf-8")
    if len(key) != APIV3_KEY_BYTES:
        raise InvalidNotification("the configured APIv3 key is not 32 bytes")
    try:
        return AESGCM(key).decrypt(
            nonce.encode("utf-8"), ciphertext, associated_data.encode("utf-8")
        )
    except (InvalidTag, ValueError):
        # A wrong key, a changed byte and a forged resource all look the same here.
        raise InvalidNotification("tampered ciphertext: resource does not decrypt") from None


def _parse_success_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidNotification(f"success_time is not RFC 3339: {value!r}") from None
    if moment.tzinfo is None:
        raise InvalidNotification(f"success_time has no UTC offset: {value!r}")
    return moment.astimezone(WECHAT_TZ)


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, Mapping):
            flat.update(_flatten(item, f"{prefix}{key}."))
        elif isinstance(item, str):
            flat[prefix + key] = item
        else:
            flat[prefix + key] = json.dumps(item, ensure_ascii=False)
    return flat


def parse_v3_payment_notification(
    headers: Mapping[str, str], body: bytes, creds: WeChatCredentials, *, now: datetime
) -> PaymentNotice:
    """Authenticate and decrypt a v3 payment notification; the order checks are the caller's.

    `now` must be timezone-aware. `raw` of the notice is the decrypted transaction, nested keys
    dotted ("amount.total") and every value a string.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not (creds.apiv3_key and creds.pay_public_key_pem and creds.pay_public_key_id):
        raise InvalidNotification("WeChat Pay v3 is not configured")
    if len(body) > MAX_V3_BODY_BYTES:
        raise InvalidNotification("body too large")
    fields = _headers(headers)
    if fields[SERIAL_HEADER] != creds.pay_public_key_id:
        raise InvalidNotification(f"unknown serial {fields[SERIAL_HEADER]!r}")
    message = v3_signed_message(fields[TIMESTAMP_HEADER], fields[NONCE_HEADER], body)
    _verify_signature(creds.pay_public_key_pem, fields[SIGNATURE_HEADER], message)
    _check_timestamp(fields[TIMESTAMP_HEADER], now)

    envelope = _json_object(body, "body")
    event_type = envelope.get("event_type")
    if event_type != PAYMENT_EVENT:
        raise InvalidNotification(f"event_type is {event_type!r}, not {PAYMENT_EVENT}")
    resource = envelope.get("resource")
    if not isinstance(resource, dict):
        raise InvalidNotification("missing field resource")
    transaction = _json_object(_decrypt_resource(resource, creds.apiv3_key), "resource")

    trade_state = transaction.get("trade_state")
    if trade_state != "SUCCESS":
        raise InvalidNotification(f"trade_state is {trade_state!r}, not SUCCESS")
    appid = _text(transaction, "appid", "")
    mchid = _text(transaction, "mchid", "")
    if appid != creds.app_id:
        raise InvalidNotification(f"appid {appid!r} is not ours")
    if mchid != creds.mch_id:
        raise InvalidNotification(f"mchid {mchid!r} is not ours")
    out_trade_no = _text(transaction, "out_trade_no", "")
    transaction_id = _text(transaction, "transaction_id", "")
    success_time = _parse_success_time(_text(transaction, "success_time", ""))
    payer = transaction.get("payer")
    if not isinstance(payer, dict):
        raise InvalidNotification("missing field payer")
    openid = _text(payer, "openid", "payer.")
    amount = transaction.get("amount")
    if not isinstance(amount, dict):
        raise InvalidNotification("missing field amount")
    total = _fen(amount, "total", "amount.")
    payer_total = (
        total if amount.get("payer_total") is None else _fen(amount, "payer_total", "amount.")
    )
    return PaymentNotice(
        out_trade_no=out_trade_no,
        transaction_id=transaction_id,
        total_fee=total,
        cash_fee=payer_total,
        appid=appid,
        mch_id=mchid,
        openid=openid,
        time_end=success_time,
        raw=_flatten(transaction),
    )


def v3_fail_body(message: str) -> bytes:
    """The JSON body a v3 notification is refused with; WeChat retries after it."""
    return json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False).encode("utf-8")
