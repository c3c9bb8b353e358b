"""The gateway against the fake WeChat served over HTTP, and the fake's own behaviour."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests

from app.errors import BadInput, UpstreamError
from app.wechat.client import WeChatGateway
from app.wechat.credentials import WeChatCredentials
from app.wechat.pay_notify import PaymentNotice, parse_v2_payment_notification, reply_xml
from miniprogram_mock.fake_wechat import create_fake_wechat
from miniprogram_mock.signing import build_v2_payment_notification

if TYPE_CHECKING:
    from conftest import FakeServer


def new_trade_no() -> str:
    return "T" + uuid.uuid4().hex[:20]


@pytest.fixture
def gateway(fake_server: FakeServer) -> WeChatGateway:
    return WeChatGateway(fake_server.creds)


async def control_pay(fake_server: FakeServer, **payload: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=fake_server.base_url) as client:
        return await client.post("mock/control/pay", json=payload)


async def test_code_to_session_gives_a_stable_openid(gateway: WeChatGateway) -> None:
    first = await gateway.code_to_session("alice")
    second = await gateway.code_to_session("alice")
    assert first.openid == second.openid == "mock-openid-alice"
    assert first.session_key
    assert first.unionid is None
    assert first.session_key not in repr(first)


async def test_invalid_code_is_bad_input(gateway: WeChatGateway) -> None:
    with pytest.raises(BadInput) as caught:
        await gateway.code_to_session("invalid-code")
    assert caught.value.field == "code"
    with pytest.raises(BadInput):
        await gateway.code_to_session("")


async def test_wrong_secret_is_upstream_error(fake_server: FakeServer) -> None:
    gateway = WeChatGateway(replace(fake_server.creds, app_secret="not-the-secret"))
    with pytest.raises(UpstreamError, match="40125"):
        await gateway.code_to_session("alice")


async def test_unreachable_wechat_is_upstream_error_without_the_secret() -> None:
    # Port 1 on loopback has no listener, so every call fails to connect.
    creds = WeChatCredentials(
        app_id="wx",
        app_secret="do-not-leak-me",
        mch_id="1",
        api_key="k" * 32,
        api_base_url="http://127.0.0.1:1/wx/",
        pay_api_base_url="http://127.0.0.1:1/pay/",
        notify_url="http://127.0.0.1:1/wechat/pay/notify",
    )
    gateway = WeChatGateway(creds, timeout=5)
    with pytest.raises(UpstreamError) as caught:
        await gateway.code_to_session("alice")
    assert "do-not-leak-me" not in str(caught.value)
    assert caught.value.__cause__ is None
    with pytest.raises(UpstreamError, match="unreachable"):
        await gateway.unified_order(
            out_trade_no=new_trade_no(), total_fee=100, body="x", openid="o"
        )


async def test_unified_order_and_query(fake_server: FakeServer, gateway: WeChatGateway) -> None:
    trade_no = new_trade_no()
    prepay_id = await gateway.unified_order(
        out_trade_no=trade_no, total_fee=1990, body="测试商品", openid="mock-openid-alice"
    )
    assert prepay_id.startswith("wx")
    order = fake_server.fake.orders[trade_no]
    assert order.total_fee == 1990
    assert order.notify_url == fake_server.creds.notify_url
    assert order.openid == "mock-openid-alice"

    again = await gateway.unified_order(
        out_trade_no=trade_no, total_fee=1990, body="测试商品", openid="mock-openid-alice"
    )
    assert again == prepay_id

    queried = await gateway.order_query(trade_no)
    assert queried["trade_state"] == "NOTPAY"
    assert queried["out_trade_no"] == trade_no
    assert "transaction_id" not in queried


async def test_same_trade_no_with_another_amount_is_refused(gateway: WeChatGateway) -> None:
    trade_no = new_trade_no()
    await gateway.unified_order(out_trade_no=trade_no, total_fee=100, body="x", openid="o")
    with pytest.raises(UpstreamError, match="INVALID_REQUEST"):
        await gateway.unified_order(out_trade_no=trade_no, total_fee=101, body="x", openid="o")


async def test_wrong_api_key_is_upstream_error(fake_server: FakeServer) -> None:
    gateway = WeChatGateway(replace(fake_server.creds, api_key="W" * 32))
    with pytest.raises(UpstreamError, match="签名错误"):
        await gateway.unified_order(out_trade_no=new_trade_no(), total_fee=1, body="x", openid="o")


async def test_unknown_order_query_is_upstream_error(gateway: WeChatGateway) -> None:
    with pytest.raises(UpstreamError, match="ORDERNOTEXIST"):
        await gateway.order_query(new_trade_no())


async def test_invalid_order_arguments_are_refused_before_calling(gateway: WeChatGateway) -> None:
    with pytest.raises(ValueError):
        await gateway.unified_order(out_trade_no="x" * 33, total_fee=1, body="x", openid="o")
    with pytest.raises(ValueError):
        await gateway.unified_order(out_trade_no="ok", total_fee=0, body="x", openid="o")


async def test_long_body_is_cut_to_what_wechat_accepts(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    trade_no = new_trade_no()
    await gateway.unified_order(out_trade_no=trade_no, total_fee=1, body="商" * 100, openid="o")
    assert len(fake_server.fake.orders[trade_no].body.encode()) <= 128


async def test_control_pay_notifies_a_notice_the_parser_accepts(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    trade_no = new_trade_no()
    await gateway.unified_order(
        out_trade_no=trade_no, total_fee=2500, body="x", openid="mock-openid-bob"
    )
    fake_server.received.clear()

    answer = await control_pay(fake_server, outTradeNo=trade_no, totalFee=None, transactionId=None)
    assert answer.status_code == 200
    result = answer.json()
    assert result["status"] == 200
    assert result["reply"] == reply_xml(True)

    [notice] = fake_server.received
    assert isinstance(notice, PaymentNotice)
    assert notice.out_trade_no == trade_no
    assert notice.total_fee == notice.cash_fee == 2500
    assert notice.openid == "mock-openid-bob"
    assert notice.transaction_id == result["transactionId"]

    queried = await gateway.order_query(trade_no)
    assert queried["trade_state"] == "SUCCESS"
    assert queried["transaction_id"] == result["transactionId"]
    assert queried["total_fee"] == "2500"
    assert queried["time_end"] == notice.raw["time_end"]

    # WeChat retries a notification with the same transaction id.
    again = await control_pay(fake_server, outTradeNo=trade_no)
    assert again.json()["transactionId"] == result["transactionId"]

    with pytest.raises(UpstreamError, match="ORDERPAID"):
        await gateway.unified_order(out_trade_no=trade_no, total_fee=2500, body="x", openid="o")


async def test_control_pay_can_claim_another_amount_and_transaction(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    trade_no = new_trade_no()
    await gateway.unified_order(out_trade_no=trade_no, total_fee=2500, body="x", openid="o")
    fake_server.received.clear()
    answer = await control_pay(fake_server, outTradeNo=trade_no, totalFee=1, transactionId="TX-9")
    assert answer.json()["transactionId"] == "TX-9"
    [notice] = fake_server.received
    assert isinstance(notice, PaymentNotice)
    assert (notice.total_fee, notice.transaction_id) == (1, "TX-9")


async def test_control_pay_refuses_unknown_orders_and_bad_input(fake_server: FakeServer) -> None:
    assert (await control_pay(fake_server, outTradeNo="nope")).status_code == 404
    assert (await control_pay(fake_server, totalFee=1)).status_code == 400
    assert (await control_pay(fake_server, outTradeNo="x", totalFee="1")).status_code == 400


async def test_control_orders_and_static_page(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    trade_no = new_trade_no()
    await gateway.unified_order(out_trade_no=trade_no, total_fee=3, body="x", openid="o")
    async with httpx.AsyncClient(base_url=fake_server.base_url) as client:
        orders = (await client.get("mock/control/orders")).json()
        page = await client.get("mock/")
    assert any(o["out_trade_no"] == trade_no and o["state"] == "NOTPAY" for o in orders)
    assert page.status_code == 200
    assert "/mock/control/pay" in page.text
    assert "createOrder" in page.text


async def test_wxa_code_and_subscribe_message_use_a_token_from_the_fake(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    image = await gateway.wxa_code_unlimited("ref=abc123", page="pages/index/index")
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"ref=abc123" in image
    assert fake_server.fake.wxa_codes[-1] == {"scene": "ref=abc123", "page": "pages/index/index"}

    await gateway.send_subscribe_message(
        "mock-openid-alice", "TPL1", {"thing1": {"value": "到账"}}, page="pages/me/me"
    )
    assert fake_server.fake.messages[-1]["touser"] == "mock-openid-alice"

    with pytest.raises(UpstreamError, match="40169"):
        await gateway.wxa_code_unlimited("x" * 33)


async def test_a_revoked_token_is_fetched_again_once(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    await gateway.wxa_code_unlimited("first")
    fake_server.fake.access_tokens.clear()
    image = await gateway.wxa_code_unlimited("second")
    assert b"second" in image
    assert len(fake_server.fake.access_tokens) == 1


async def test_every_request_goes_to_the_configured_hosts(
    fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kw: Any) -> Any:
        seen.append(url)
        return original(self, method, url, *args, **kw)

    monkeypatch.setattr(requests.Session, "request", recording)
    gateway = WeChatGateway(fake_server.creds)
    await gateway.code_to_session("carol")
    await gateway.wxa_code_unlimited("s")
    await gateway.send_subscribe_message("o", "T", {"a": {"value": "b"}})
    trade_no = new_trade_no()
    await gateway.unified_order(out_trade_no=trade_no, total_fee=1, body="x", openid="o")
    await gateway.order_query(trade_no)

    creds = fake_server.creds
    assert any(url.startswith(creds.api_base_url + "cgi-bin/token") for url in seen)
    assert any(url.startswith(creds.api_base_url + "wxa/") for url in seen)
    assert all(url.startswith((creds.api_base_url, creds.pay_api_base_url)) for url in seen)
    login = next(url for url in seen if "jscode2session" in url)
    assert "access_token" not in login


def test_the_fake_refuses_production(fake_server: FakeServer) -> None:
    with pytest.raises(RuntimeError):
        create_fake_wechat(fake_server.creds, production=True)


def test_notices_from_the_fake_verify_with_our_parser(fake_server: FakeServer) -> None:
    body = build_v2_payment_notification(
        fake_server.creds, out_trade_no="A", transaction_id="B", total_fee=5, openid="o"
    )
    assert parse_v2_payment_notification(body, fake_server.creds).total_fee == 5
