"""WeChat Pay v2 refund notifications: decryption, checks, endpoint and the fake sender."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import dict_to_xml

from app.config import Settings
from app.wechat.credentials import resolve_credentials
from app.wechat.http import refund_notify_endpoint
from app.wechat.pay_notify import InvalidNotification, parse_v2_xml, reply_xml
from app.wechat.refund_notify import (
    RefundNotice,
    decrypt_req_info,
    parse_v2_refund_notification,
)
from miniprogram_mock.fake_wechat import create_fake_wechat, refund_notify_url
from miniprogram_mock.signing import build_v2_refund_notification, encrypt_req_info, signed_xml

SHANGHAI = ZoneInfo("Asia/Shanghai")
CREDS = resolve_credentials(Settings(app_env="test", wechat_fake=True), "http://127.0.0.1:9/")


def notification(**overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "out_trade_no": "R20240101000001",
        "out_refund_no": "RF20240101000001",
        "refund_id": "50000000012024010100000000001",
        "transaction_id": "4200000001202401010000000001",
        "total_fee": 1990,
        "refund_fee": 990,
        "success_time": datetime(2024, 1, 2, 9, 46, 1, tzinfo=SHANGHAI),
    }
    arguments.update(overrides)
    return build_v2_refund_notification(CREDS, **arguments)


def req_info_fields(**overrides: Any) -> dict[str, str]:
    fields: dict[str, Any] = {
        "out_refund_no": "RF1",
        "out_trade_no": "R1",
        "refund_id": "50x",
        "transaction_id": "T1",
        "total_fee": 1990,
        "refund_fee": 990,
        "settlement_refund_fee": 990,
        "refund_status": "SUCCESS",
        "success_time": "2024-01-02 09:46:01",
    }
    fields.update(overrides)
    return {key: str(value) for key, value in fields.items() if value is not None}


def with_req_info(plaintext: str, **outer: Any) -> bytes:
    fields: dict[str, Any] = {
        "return_code": "SUCCESS",
        "appid": CREDS.app_id,
        "mch_id": CREDS.mch_id,
        "nonce_str": "abc",
        "req_info": encrypt_req_info(CREDS.api_key, plaintext),
    }
    fields.update(outer)
    return dict_to_xml({k: v for k, v in fields.items() if v is not None}).encode()


def root(fields: dict[str, str]) -> str:
    return dict_to_xml(fields).replace("<xml>", "<root>").replace("</xml>", "</root>")


def refused(body: bytes) -> str:
    with pytest.raises(InvalidNotification) as caught:
        parse_v2_refund_notification(body, CREDS)
    return caught.value.reason


# ---------------------------------------------------------------- the parser


def test_valid_notification_decrypts() -> None:
    notice = parse_v2_refund_notification(notification(), CREDS)
    assert notice == RefundNotice(
        out_trade_no="R20240101000001",
        out_refund_no="RF20240101000001",
        refund_id="50000000012024010100000000001",
        transaction_id="4200000001202401010000000001",
        total_fee=1990,
        refund_fee=990,
        settlement_refund_fee=990,
        refund_status="SUCCESS",
        success_time=datetime(2024, 1, 2, 9, 46, 1, tzinfo=SHANGHAI),
        raw={},
    )
    assert notice.success_time is not None and notice.success_time.utcoffset() is not None
    assert notice.raw["refund_recv_accout"] == "支付用户零钱"


def test_our_encryption_is_wechatpys() -> None:
    body = notification()
    theirs = WeChatPay(CREDS.app_id, CREDS.api_key, CREDS.mch_id).parse_refund_notify_result(body)
    ours = parse_v2_refund_notification(body, CREDS)
    assert theirs["out_refund_no"] == ours.out_refund_no
    assert theirs["refund_fee"] == ours.refund_fee


def test_settlement_refund_fee_is_read_separately() -> None:
    notice = parse_v2_refund_notification(notification(settlement_refund_fee=890), CREDS)
    assert (notice.refund_fee, notice.settlement_refund_fee) == (990, 890)


@pytest.mark.parametrize("status", ["CHANGE", "REFUNDCLOSE"])
def test_unsuccessful_refunds_parse_without_a_success_time(status: str) -> None:
    notice = parse_v2_refund_notification(notification(refund_status=status), CREDS)
    assert notice.refund_status == status
    assert notice.success_time is None


def test_indented_req_info_parses() -> None:
    fields = req_info_fields()
    lines = "".join(f"\n  <{key}><![CDATA[{value}]]></{key}>" for key, value in fields.items())
    notice = parse_v2_refund_notification(with_req_info(f"<root>{lines}\n</root>\n"), CREDS)
    assert notice.out_refund_no == "RF1"


def test_forged_notification_does_not_decrypt() -> None:
    reason = refused(notification(api_key="F" * 32))
    assert "does not decrypt" in reason


@pytest.mark.parametrize(
    "req_info",
    [
        "not base64!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(bytes(range(32))).decode(),
        base64.b64encode(b"\x00" * 48).decode(),
    ],
)
def test_garbage_req_info_is_refused(req_info: str) -> None:
    body = dict_to_xml(
        {
            "return_code": "SUCCESS",
            "appid": CREDS.app_id,
            "mch_id": CREDS.mch_id,
            "req_info": req_info,
        }
    ).encode()
    assert "req_info" in refused(body)


def test_decrypt_req_info_round_trips() -> None:
    assert decrypt_req_info(encrypt_req_info("k" * 32, "<root/>"), "k" * 32) == "<root/>"
    with pytest.raises(InvalidNotification):
        decrypt_req_info(encrypt_req_info("k" * 32, "<root/>"), "j" * 32)


@pytest.mark.parametrize(
    "plaintext",
    [
        "plain text",
        "<xml><a>1</a></xml>",
        "<root><a><b>1</b></a></root>",
        '<root><!DOCTYPE x [<!ENTITY e "x">]><a>&e;</a></root>',
        "<root><a>1</a>",
    ],
)
def test_req_info_that_is_not_the_expected_xml_is_refused(plaintext: str) -> None:
    assert "req_info" in refused(with_req_info(plaintext))


@pytest.mark.parametrize(
    ("outer", "reason"),
    [
        ({"return_code": "FAIL"}, "return_code"),
        ({"appid": "wxsomebodyelse00001"}, "appid"),
        ({"mch_id": "1999"}, "mch_id"),
        ({"req_info": None}, "req_info"),
    ],
)
def test_outer_checks(outer: dict[str, Any], reason: str) -> None:
    assert reason in refused(with_req_info(root(req_info_fields()), **outer))


@pytest.mark.parametrize(
    "missing",
    [
        "out_trade_no",
        "out_refund_no",
        "refund_id",
        "transaction_id",
        "total_fee",
        "refund_fee",
        "settlement_refund_fee",
        "refund_status",
    ],
)
def test_missing_req_info_field_is_refused(missing: str) -> None:
    assert missing in refused(with_req_info(root(req_info_fields(**{missing: None}))))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"refund_status": "PROCESSING"}, "refund_status"),
        ({"refund_fee": "9.90"}, "refund_fee"),
        ({"total_fee": "-1"}, "total_fee"),
        ({"settlement_refund_fee": "abc"}, "settlement_refund_fee"),
        ({"success_time": "20240102094601"}, "success_time"),
    ],
)
def test_bad_req_info_values_are_refused(overrides: dict[str, Any], reason: str) -> None:
    assert reason in refused(with_req_info(root(req_info_fields(**overrides))))


@pytest.mark.parametrize("body", [b"", b"<xml>", b"<xml><a>" + b"x" * 70_000 + b"</a></xml>"])
def test_malformed_outer_xml_is_refused(body: bytes) -> None:
    assert refused(body).startswith("malformed XML")


# ---------------------------------------------------------------- the endpoint


class Recorder:
    """A stub `on_refund`: records each notice and answers as told."""

    def __init__(self, answer: tuple[bool, str] = (True, "")) -> None:
        self.answer = answer
        self.notices: list[RefundNotice] = []
        self.fail = False

    async def __call__(self, notice: RefundNotice) -> tuple[bool, str]:
        self.notices.append(notice)
        if self.fail:
            raise RuntimeError("database down")
        return self.answer


def refund_app(recorder: Recorder) -> Starlette:
    async def payment_notify(request: Request) -> Response:
        return Response(reply_xml(True), media_type="application/xml")

    endpoint = refund_notify_endpoint(CREDS, recorder)
    return Starlette(
        routes=[
            Route("/wechat/pay/refund-notify", endpoint, methods=["POST"]),
            Route("/wechat/pay/notify", payment_notify, methods=["POST"]),
        ]
    )


async def post_refund(app: Starlette, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        return await client.post("/wechat/pay/refund-notify", content=body)


async def test_endpoint_answers_success_for_an_accepted_notice() -> None:
    recorder = Recorder()
    answer = await post_refund(refund_app(recorder), notification())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.text == reply_xml(True)
    [notice] = recorder.notices
    assert notice.out_refund_no == "RF20240101000001"


async def test_endpoint_answers_fail_when_the_callback_refuses() -> None:
    recorder = Recorder((False, "unknown refund"))
    answer = await post_refund(refund_app(recorder), notification())
    assert answer.status_code == 200
    assert answer.text == reply_xml(False, "unknown refund")
    assert len(recorder.notices) == 1


@pytest.mark.parametrize(
    "body",
    [notification(api_key="F" * 32), notification(mch_id="1999"), b"<xml></xml>"],
)
async def test_endpoint_refuses_invalid_notices_without_calling_back(body: bytes) -> None:
    recorder = Recorder()
    answer = await post_refund(refund_app(recorder), body)
    assert parse_v2_xml(answer.content)["return_code"] == "FAIL"
    assert recorder.notices == []


async def test_endpoint_refuses_a_body_over_64_kb() -> None:
    recorder = Recorder()
    answer = await post_refund(refund_app(recorder), b"<xml>" + b" " * 70_000 + b"</xml>")
    assert answer.text == reply_xml(False, "body too large")
    assert recorder.notices == []


async def test_endpoint_answers_500_when_the_callback_fails() -> None:
    recorder = Recorder()
    recorder.fail = True
    answer = await post_refund(refund_app(recorder), notification())
    assert answer.status_code == 500
    assert parse_v2_xml(answer.content)["return_code"] == "FAIL"


# ---------------------------------------------------------------- the fake's /control/refund-notify


def test_refund_notify_url_sits_beside_the_payment_one() -> None:
    assert (
        refund_notify_url("http://shop/wechat/pay/notify") == "http://shop/wechat/pay/refund-notify"
    )
    assert (
        refund_notify_url("http://notify.shop/pay/notify/")
        == "http://notify.shop/pay/refund-notify/"
    )
    assert refund_notify_url("http://shop/cb") == "http://shop/cb/refund-notify"


@pytest.fixture
async def fake_refunds() -> AsyncIterator[tuple[httpx.AsyncClient, Recorder]]:
    """The fake WeChat in-process, delivering notifications to our endpoints in-process."""
    recorder = Recorder()
    fake = create_fake_wechat(CREDS, notify_transport=httpx.ASGITransport(app=refund_app(recorder)))
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://wechat") as client:
        yield client, recorder


async def paid_order(client: httpx.AsyncClient, out_trade_no: str, total_fee: int) -> None:
    request = {
        "appid": CREDS.app_id,
        "mch_id": CREDS.mch_id,
        "body": "x",
        "out_trade_no": out_trade_no,
        "total_fee": total_fee,
        "notify_url": CREDS.notify_url,
        "trade_type": "JSAPI",
        "openid": "mock-openid-erin",
    }
    await client.post("/pay/pay/unifiedorder", content=signed_xml(request, CREDS.api_key))
    paid = await client.post("/control/pay", json={"outTradeNo": out_trade_no})
    assert paid.json()["reply"] == reply_xml(True)


async def refund(client: httpx.AsyncClient, out_trade_no: str, **extra: Any) -> dict[str, str]:
    request = {
        "appid": CREDS.app_id,
        "mch_id": CREDS.mch_id,
        "out_trade_no": out_trade_no,
        "out_refund_no": "RF" + out_trade_no,
        "total_fee": 3000,
        "refund_fee": 1000,
        **extra,
    }
    answer = await client.post("/pay/secapi/pay/refund", content=signed_xml(request, CREDS.api_key))
    fields = parse_v2_xml(answer.content)
    assert fields["result_code"] == "SUCCESS"
    return fields


async def test_control_refund_notify_posts_a_notice_our_endpoint_accepts(
    fake_refunds: tuple[httpx.AsyncClient, Recorder],
) -> None:
    client, recorder = fake_refunds
    await paid_order(client, "RFORDER1", 3000)
    refunded = await refund(client, "RFORDER1")

    answer = await client.post("/control/refund-notify", json={"outRefundNo": "RFRFORDER1"})
    assert answer.status_code == 200
    assert answer.json() == {"status": 200, "reply": reply_xml(True)}
    [notice] = recorder.notices
    assert notice.out_refund_no == "RFRFORDER1"
    assert notice.out_trade_no == "RFORDER1"
    assert notice.refund_id == refunded["refund_id"]
    assert notice.transaction_id == refunded["transaction_id"]
    assert (notice.total_fee, notice.refund_fee, notice.settlement_refund_fee) == (3000, 1000, 1000)
    assert notice.refund_status == "SUCCESS"
    assert notice.success_time is not None


async def test_control_refund_notify_can_report_a_closed_refund(
    fake_refunds: tuple[httpx.AsyncClient, Recorder],
) -> None:
    client, recorder = fake_refunds
    await paid_order(client, "RFORDER2", 3000)
    await refund(client, "RFORDER2")
    payload = {"outRefundNo": "RFRFORDER2", "refundStatus": "REFUNDCLOSE"}
    assert (await client.post("/control/refund-notify", json=payload)).json()["status"] == 200
    assert recorder.notices[-1].refund_status == "REFUNDCLOSE"
    assert recorder.notices[-1].success_time is None


async def test_control_refund_notify_uses_the_notify_url_given_at_refund(
    fake_refunds: tuple[httpx.AsyncClient, Recorder],
) -> None:
    client, recorder = fake_refunds
    await paid_order(client, "RFORDER3", 3000)
    await refund(client, "RFORDER3", notify_url="http://shop/elsewhere")
    answer = await client.post("/control/refund-notify", json={"outRefundNo": "RFRFORDER3"})
    assert answer.json()["status"] == 404
    assert recorder.notices == []


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"outRefundNo": "nope"}, 404),
        ({}, 400),
        ({"outRefundNo": "x", "refundStatus": "DONE"}, 400),
        ("x", 400),
    ],
)
async def test_control_refund_notify_refuses_bad_input(
    fake_refunds: tuple[httpx.AsyncClient, Recorder], payload: Any, status: int
) -> None:
    client, _ = fake_refunds
    assert (await client.post("/control/refund-notify", json=payload)).status_code == status


def test_notices_built_for_other_credentials_do_not_decrypt_here() -> None:
    other = replace(CREDS, api_key="O" * 32)
    body = build_v2_refund_notification(
        other,
        out_trade_no="R",
        out_refund_no="RF",
        refund_id="1",
        transaction_id="T",
        total_fee=1,
        refund_fee=1,
    )
    assert parse_v2_refund_notification(body, other).refund_fee == 1
    assert "does not decrypt" in refused(body)
