"""WeChat Pay v2 signing and XML helpers, shared by the fake WeChat and the tests."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from xml.parsers.expat import ExpatError
from zoneinfo import ZoneInfo

import xmltodict
from wechatpy.pay.utils import calculate_signature, dict_to_xml

from app.wechat.credentials import WeChatCredentials

WECHAT_TZ = ZoneInfo("Asia/Shanghai")


def _as_strings(params: Mapping[str, Any]) -> dict[str, str]:
    # wechatpy leaves out every falsy value, so an int 0 would drop out of the signature while
    # WeChat signs "0"; as strings only empty values drop out, as WeChat specifies.
    return {key: str(value) for key, value in params.items() if value is not None and key != "sign"}


def sign_v2(params: Mapping[str, Any], api_key: str) -> str:
    """The v2 MD5 signature of `params` (any `sign` key is ignored)."""
    return calculate_signature(_as_strings(params), api_key)


def signed_xml(params: Mapping[str, Any], api_key: str) -> str:
    """`params` with a fresh nonce when missing, as signed `<xml>` in WeChat's layout."""
    fields = _as_strings(params)
    fields.setdefault("nonce_str", secrets.token_hex(16))
    return dict_to_xml(fields, sign_v2(fields, api_key))


def fail_xml(message: str) -> str:
    """The unsigned `return_code` FAIL answer WeChat Pay gives to a request it cannot take."""
    return (
        "<xml><return_code><![CDATA[FAIL]]></return_code>"
        f"<return_msg><![CDATA[{message}]]></return_msg></xml>"
    )


def parse_xml(body: bytes) -> dict[str, str] | None:
    """The fields of a flat v2 `<xml>` body, or None when it is not one."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return None
    try:
        doc: Any = xmltodict.parse(body, disable_entities=True)
    except (ExpatError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("xml"), dict):
        return None
    fields: dict[str, str] = {}
    for key, value in doc["xml"].items():
        if value is None:
            value = ""
        if not isinstance(value, str):
            return None
        fields[key] = value
    return fields


def format_time_end(moment: datetime | None = None) -> str:
    """`yyyyMMddHHmmss` in Beijing time, WeChat's `time_end`; a naive time is taken as Beijing's."""
    moment = moment or datetime.now(WECHAT_TZ)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=WECHAT_TZ)
    return moment.astimezone(WECHAT_TZ).strftime("%Y%m%d%H%M%S")


def build_v2_payment_notification(
    creds: WeChatCredentials,
    *,
    out_trade_no: str,
    transaction_id: str,
    total_fee: int,
    openid: str,
    time_end: datetime | None = None,
    result_code: str = "SUCCESS",
    appid: str | None = None,
    mch_id: str | None = None,
    bad_signature: bool = False,
) -> bytes:
    """The signed XML WeChat Pay posts to `notify_url` when an order is paid."""
    fields: dict[str, Any] = {
        "return_code": "SUCCESS",
        "return_msg": "OK",
        "result_code": result_code,
        "appid": appid or creds.app_id,
        "mch_id": mch_id or creds.mch_id,
        "openid": openid,
        "is_subscribe": "N",
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id,
        "total_fee": total_fee,
        "cash_fee": total_fee,
        "fee_type": "CNY",
        "trade_type": "JSAPI",
        "bank_type": "OTHERS",
        "time_end": format_time_end(time_end),
        "nonce_str": secrets.token_hex(16),
    }
    if result_code != "SUCCESS":
        fields["err_code"] = "SYSTEMERROR"
        fields["err_code_des"] = "payment failed"
    # A signature made with another key is what a forger without our key would send.
    key = "X" * 32 if bad_signature else creds.api_key
    return signed_xml(fields, key).encode("utf-8")
