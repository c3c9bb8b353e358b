"""WeChat Pay signing, encryption and XML helpers (v2 and v3), shared by the fake and the tests."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from xml.parsers.expat import ExpatError
from zoneinfo import ZoneInfo

import xmltodict
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpy.pay.utils import calculate_signature, dict_to_xml

from app.wechat.credentials import WeChatCredentials
from app.wechat.pay_v3 import v3_signed_message
from app.wechat.refund_notify import refund_key

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


def format_rfc3339(moment: datetime | None = None) -> str:
    """`2024-01-01T12:30:45+08:00`, the v3 time format; a naive time is taken as Beijing's."""
    moment = moment or datetime.now(WECHAT_TZ)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=WECHAT_TZ)
    return moment.astimezone(WECHAT_TZ).isoformat(timespec="seconds")


def sign_v3(private_key_pem: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    """The base64 RSA-SHA256 (PKCS#1 v1.5) signature WeChat Pay v3 puts in Wechatpay-Signature."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the WeChat Pay platform private key is not an RSA key")
    signature = key.sign(
        v3_signed_message(timestamp, nonce, body), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode("ascii")


def encrypt_v3_resource(
    apiv3_key: str, plaintext: bytes, *, associated_data: str = "transaction"
) -> dict[str, str]:
    """A v3 `resource` object: `plaintext` under AEAD_AES_256_GCM with the APIv3 key."""
    nonce = secrets.token_hex(6)  # WeChat's nonces are 12 characters
    ciphertext = AESGCM(apiv3_key.encode("utf-8")).encrypt(
        nonce.encode("utf-8"), plaintext, associated_data.encode("utf-8")
    )
    return {
        "original_type": "transaction",
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def _flip_a_byte(ciphertext_b64: str) -> str:
    data = bytearray(base64.b64decode(ciphertext_b64))
    data[len(data) // 2] ^= 0x01
    return base64.b64encode(bytes(data)).decode("ascii")


def build_v3_payment_notification(
    creds: WeChatCredentials,
    *,
    out_trade_no: str,
    transaction_id: str,
    total_fee: int,
    openid: str,
    success_time: datetime | None = None,
    payer_total: int | None = None,
    trade_state: str = "SUCCESS",
    appid: str | None = None,
    mchid: str | None = None,
    event_type: str = "TRANSACTION.SUCCESS",
    serial: str | None = None,
    timestamp: int | None = None,
    tamper: bool = False,
    wrong_signature: bool = False,
) -> tuple[dict[str, str], bytes]:
    """The headers and JSON body WeChat Pay v3 posts when an order is paid.

    `timestamp` (unix seconds) simulates an old or early notification. `tamper` flips a byte of
    the ciphertext and signs the result, so that only the AES-GCM check can catch it;
    `wrong_signature` signs something else, as a forger without the private key would.
    """
    if not (creds.apiv3_key and creds.fake_pay_private_key_pem and creds.pay_public_key_id):
        raise ValueError("these credentials cannot sign v3 notifications (no fake private key)")
    transaction = {
        "appid": appid or creds.app_id,
        "mchid": mchid or creds.mch_id,
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id,
        "trade_type": "JSAPI",
        "trade_state": trade_state,
        "trade_state_desc": "支付成功" if trade_state == "SUCCESS" else trade_state,
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": format_rfc3339(success_time),
        "payer": {"openid": openid},
        "amount": {
            "total": total_fee,
            "payer_total": total_fee if payer_total is None else payer_total,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }
    resource = encrypt_v3_resource(
        creds.apiv3_key, json.dumps(transaction, ensure_ascii=False).encode("utf-8")
    )
    if tamper:
        resource["ciphertext"] = _flip_a_byte(resource["ciphertext"])
    envelope = {
        "id": "EV-" + secrets.token_hex(10),
        "create_time": format_rfc3339(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": resource,
    }
    body = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16)
    signed_body = body + b" " if wrong_signature else body
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": sign_v3(creds.fake_pay_private_key_pem, stamp, nonce, signed_body),
        "Wechatpay-Serial": serial or creds.pay_public_key_id,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return headers, body


def encrypt_req_info(api_key: str, plaintext: str) -> str:
    """`plaintext` as WeChat encrypts a refund's `req_info`: AES-256-ECB, PKCS#7, base64."""
    padder = sym_padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(refund_key(api_key)), modes.ECB()).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def format_refund_time(moment: datetime | None = None) -> str:
    """`yyyy-MM-dd HH:mm:ss` in Beijing time, a refund's `success_time`."""
    moment = moment or datetime.now(WECHAT_TZ)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=WECHAT_TZ)
    return moment.astimezone(WECHAT_TZ).strftime("%Y-%m-%d %H:%M:%S")


def build_v2_refund_notification(
    creds: WeChatCredentials,
    *,
    out_trade_no: str,
    out_refund_no: str,
    refund_id: str,
    transaction_id: str,
    total_fee: int,
    refund_fee: int,
    settlement_refund_fee: int | None = None,
    refund_status: str = "SUCCESS",
    success_time: datetime | None = None,
    appid: str | None = None,
    mch_id: str | None = None,
    api_key: str | None = None,
) -> bytes:
    """The XML WeChat Pay v2 posts when a refund ends; `api_key` other than ours forges one.

    WeChat signs nothing here: `req_info` is encrypted with a key derived from the API key.
    """
    inner: dict[str, Any] = {
        "out_refund_no": out_refund_no,
        "out_trade_no": out_trade_no,
        "refund_account": "REFUND_SOURCE_RECHARGE_FUNDS",
        "refund_fee": refund_fee,
        "refund_id": refund_id,
        "refund_recv_accout": "支付用户零钱",
        "refund_request_source": "API",
        "refund_status": refund_status,
        "settlement_refund_fee": refund_fee
        if settlement_refund_fee is None
        else settlement_refund_fee,
        "settlement_total_fee": total_fee,
        "total_fee": total_fee,
        "transaction_id": transaction_id,
    }
    if refund_status == "SUCCESS":
        inner["success_time"] = format_refund_time(success_time)
    root = dict_to_xml(_as_strings(inner)).replace("<xml>", "<root>").replace("</xml>", "</root>")
    outer = {
        "return_code": "SUCCESS",
        "appid": appid or creds.app_id,
        "mch_id": mch_id or creds.mch_id,
        "nonce_str": secrets.token_hex(16),
        "req_info": encrypt_req_info(api_key or creds.api_key, root),
    }
    return dict_to_xml(outer).encode("utf-8")
