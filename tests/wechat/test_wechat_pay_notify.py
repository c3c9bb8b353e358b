"""The v2 payment notification parser, the reply XML and the JSAPI pay parameters."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from wechatpy.pay.utils import calculate_signature

from app.wechat.client import WeChatGateway
from app.wechat.credentials import (
    FAKE_APP_ID,
    FAKE_MCH_ID,
    FAKE_PAY_API_KEY,
    WeChatCredentials,
)
from app.wechat.pay_notify import (
    InvalidNotification,
    parse_v2_payment_notification,
    parse_v2_xml,
    reply_xml,
)
from miniprogram_mock.signing import build_v2_payment_notification, sign_v2, signed_xml

SHANGHAI = ZoneInfo("Asia/Shanghai")

CREDS = WeChatCredentials(
    app_id=FAKE_APP_ID,
    app_secret="secret",
    mch_id=FAKE_MCH_ID,
    api_key=FAKE_PAY_API_KEY,
    api_base_url="http://127.0.0.1:9/mock/wx/",
    pay_api_base_url="http://127.0.0.1:9/mock/pay/",
    notify_url="http://127.0.0.1:9/wechat/pay/notify",
)


def notice_fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "return_code": "SUCCESS",
        "result_code": "SUCCESS",
        "appid": CREDS.app_id,
        "mch_id": CREDS.mch_id,
        "openid": "mock-openid-alice",
        "out_trade_no": "R20240101000001",
        "transaction_id": "4200000001202401010000000001",
        "total_fee": 1990,
        "cash_fee": 1990,
        "fee_type": "CNY",
        "trade_type": "JSAPI",
        "bank_type": "OTHERS",
        "time_end": "20240101123045",
        "nonce_str": "abcdef0123456789",
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def signed(**overrides: object) -> bytes:
    return signed_xml(notice_fields(**overrides), CREDS.api_key).encode()


def refused(body: bytes, creds: WeChatCredentials = CREDS) -> str:
    with pytest.raises(InvalidNotification) as caught:
        parse_v2_payment_notification(body, creds)
    return caught.value.reason


def test_valid_notification_parses() -> None:
    body = build_v2_payment_notification(
        CREDS,
        out_trade_no="R1",
        transaction_id="T1",
        total_fee=1990,
        openid="mock-openid-alice",
        time_end=datetime(2024, 1, 1, 12, 30, 45, tzinfo=SHANGHAI),
    )
    notice = parse_v2_payment_notification(body, CREDS)
    assert notice.out_trade_no == "R1"
    assert notice.transaction_id == "T1"
    assert notice.total_fee == 1990
    assert notice.cash_fee == 1990
    assert notice.appid == CREDS.app_id
    assert notice.mch_id == CREDS.mch_id
    assert notice.openid == "mock-openid-alice"
    assert notice.time_end == datetime(2024, 1, 1, 12, 30, 45, tzinfo=SHANGHAI)
    assert notice.time_end.utcoffset() is not None
    assert notice.raw["fee_type"] == "CNY"
    assert notice.raw["sign"] == sign_v2(notice.raw, CREDS.api_key)


def test_time_end_is_read_as_beijing_time() -> None:
    notice = parse_v2_payment_notification(signed(time_end="20240101000000"), CREDS)
    assert notice.time_end.astimezone(ZoneInfo("UTC")) == datetime(
        2023, 12, 31, 16, 0, tzinfo=ZoneInfo("UTC")
    )


def test_indented_xml_from_wechat_parses() -> None:
    fields = {key: str(value) for key, value in notice_fields().items()}
    lines = [f"  <{key}><![CDATA[{value}]]></{key}>" for key, value in fields.items()]
    lines.append(f"  <sign>{sign_v2(fields, CREDS.api_key)}</sign>")
    body = ("<xml>\n" + "\n".join(lines) + "\n</xml>\n").encode()
    assert parse_v2_payment_notification(body, CREDS).total_fee == 1990


def test_zero_cash_fee_is_signed_as_zero() -> None:
    notice = parse_v2_payment_notification(signed(cash_fee=0), CREDS)
    assert notice.cash_fee == 0


def test_bad_signature_is_refused() -> None:
    body = build_v2_payment_notification(
        CREDS,
        out_trade_no="R1",
        transaction_id="T1",
        total_fee=1990,
        openid="o",
        bad_signature=True,
    )
    assert refused(body) == "signature mismatch"


def test_amount_changed_after_signing_is_refused() -> None:
    body = signed(total_fee=1990).replace(b"<total_fee>1990<", b"<total_fee>1<")
    assert b"<total_fee>1<" in body
    assert refused(body) == "signature mismatch"


def test_other_api_key_is_refused() -> None:
    assert refused(signed(), replace(CREDS, api_key="Y" * 32)) == "signature mismatch"


def test_missing_signature_is_refused() -> None:
    fields = {key: str(value) for key, value in notice_fields().items()}
    body = signed_xml(fields, CREDS.api_key).encode()
    unsigned = body.split(b"<sign>")[0] + b"</xml>"
    assert refused(unsigned) == "missing signature"


def test_other_appid_is_refused() -> None:
    body = build_v2_payment_notification(
        CREDS,
        out_trade_no="R1",
        transaction_id="T1",
        total_fee=1990,
        openid="o",
        appid="wxsomebodyelse00001",
    )
    assert "appid" in refused(body)


def test_other_mch_id_is_refused() -> None:
    body = build_v2_payment_notification(
        CREDS, out_trade_no="R1", transaction_id="T1", total_fee=1990, openid="o", mch_id="1999"
    )
    assert "mch_id" in refused(body)


def test_fail_result_code_is_refused() -> None:
    body = build_v2_payment_notification(
        CREDS,
        out_trade_no="R1",
        transaction_id="T1",
        total_fee=1990,
        openid="o",
        result_code="FAIL",
    )
    assert "result_code" in refused(body)


def test_fail_return_code_is_refused() -> None:
    assert "return_code" in refused(signed(return_code="FAIL"))


@pytest.mark.parametrize("missing", ["out_trade_no", "transaction_id", "total_fee", "openid"])
def test_missing_required_field_is_refused(missing: str) -> None:
    assert missing in refused(signed(**{missing: None}))


@pytest.mark.parametrize("fee", ["19.90", "-1", "1e3", " 1990", "abc"])
def test_non_integer_total_fee_is_refused(fee: str) -> None:
    assert "total_fee" in refused(signed(total_fee=fee))


@pytest.mark.parametrize("time_end", ["2024-01-01 12:30", "20241301000000"])
def test_bad_time_end_is_refused(time_end: str) -> None:
    assert "time_end" in refused(signed(time_end=time_end))


def test_other_sign_type_is_refused() -> None:
    assert "sign_type" in refused(signed(sign_type="HMAC-SHA256"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<xml><return_code>SUCCESS</return_code>",
        b"<root><return_code>SUCCESS</return_code></root>",
        b"<xml></xml>",
        b"<xml><a><b>nested</b></a></xml>",
        b"<xml><a>1</a><a>2</a></xml>",
        b"<xml a='1'><b>1</b></xml>",
        "<xml><a>\u00e9</a></xml>".encode("latin-1"),
        b"<xml><a>" + b"x" * 70_000 + b"</a></xml>",
    ],
)
def test_malformed_xml_is_refused(body: bytes) -> None:
    assert refused(body).startswith("malformed XML")


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "x">]><xml><a>&e;</a></xml>',
        b'<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><openid>&e;</openid></xml>',
        b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><openid>o</openid></xml>',
        b'<!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><c>&b;</c></xml>',
        b"<!doctype xml><xml><openid>o</openid></xml>",
    ],
)
def test_doctype_and_entities_are_refused(body: bytes) -> None:
    assert refused(body).startswith("malformed XML")


def test_declared_encoding_does_not_bypass_the_declaration_check() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><xml><a>1</a></xml>'.encode("utf-16")
    assert refused(body).startswith("malformed XML")


def test_parse_v2_xml_keeps_values_exactly() -> None:
    assert parse_v2_xml(b"<xml><a><![CDATA[ x ]]></a><b></b><c>12</c></xml>") == {
        "a": " x ",
        "b": "",
        "c": "12",
    }


def test_reply_xml_success_is_exact() -> None:
    assert reply_xml(True) == (
        "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
        "<return_msg><![CDATA[OK]]></return_msg></xml>"
    )


def test_reply_xml_fail_carries_the_message() -> None:
    assert reply_xml(False, "amount mismatch") == (
        "<xml><return_code><![CDATA[FAIL]]></return_code>"
        "<return_msg><![CDATA[amount mismatch]]></return_msg></xml>"
    )


def test_reply_xml_message_cannot_break_out_of_cdata() -> None:
    reply = reply_xml(False, "a]]><x>b")
    assert parse_v2_xml(reply.encode()) == {"return_code": "FAIL", "return_msg": "a]]><x>b"}


def test_pay_params_signature_verifies() -> None:
    params = WeChatGateway(CREDS).pay_params("wx20240101123045abcdef")
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == CREDS.app_id
    assert params["package"] == "prepay_id=wx20240101123045abcdef"
    assert params["signType"] == "MD5"
    assert params["timeStamp"].isdigit()
    unsigned = {key: value for key, value in params.items() if key != "paySign"}
    assert params["paySign"] == calculate_signature(unsigned, CREDS.api_key)
    assert params["paySign"] != calculate_signature(unsigned, "Z" * 32)
