"""WeChat's payment notification: verified, checked against our own order, one effect only."""

from __future__ import annotations

import asyncio

from miniprogram_mock.signing import build_v2_payment_notification
from tests.support.client import (
    buy,
    create_product,
    my_entries,
    order_of,
    pay_and_settle,
    wait_settled,
    wechat_pays,
)

SUCCESS = "<return_code><![CDATA[SUCCESS]]></return_code>"
FAIL = "<return_code><![CDATA[FAIL]]></return_code>"


async def _audit_ok(admin) -> None:
    report = (await admin("{ audit { ok violations } }"))["audit"]
    assert report == {"ok": True, "violations": []}


async def _posted(server, consumer, order, **changes) -> str:
    """Post a notification signed by the test itself straight to the notify URL."""
    user = (await consumer("{ me { id } }"))["me"]
    assert user["id"] == consumer.user_id
    body = build_v2_payment_notification(
        server.services.credentials,
        out_trade_no=changes.pop("out_trade_no", order["outTradeNo"]),
        transaction_id=changes.pop("transaction_id", "4200000001"),
        total_fee=changes.pop("total_fee", order["payableFen"]),
        openid="mock-openid-x",
        **changes,
    )
    response = await consumer.http.post("wechat/pay/notify", content=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    return response.text


async def test_pay_params_are_given_until_paid(anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    assert order["status"] == "PENDING_PAYMENT"
    assert order["payableFen"] == 16800
    assert order["payParams"]["package"].startswith("prepay_id=")
    assert order["payParams"]["signType"] == "MD5"
    paid = await pay_and_settle(buyer, order)
    assert paid["status"] == "PAID"
    assert paid["payParams"] is None


async def test_duplicate_notification_has_one_effect(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    first = await wechat_pays(buyer.http, order["outTradeNo"])
    assert SUCCESS in first["reply"]
    await wait_settled(buyer, order["id"])
    again = await wechat_pays(buyer.http, order["outTradeNo"])
    assert again["transactionId"] == first["transactionId"]
    assert SUCCESS in again["reply"]
    # Twenty more copies at once: each answered SUCCESS, none with an effect.
    replies = await asyncio.gather(
        *[_posted(server, buyer, order, transaction_id=first["transactionId"]) for _ in range(20)]
    )
    assert all(SUCCESS in reply for reply in replies)
    await server.services.jobs.drain()
    entries = await my_entries(buyer)
    assert len(entries) == 1
    assert entries[0]["entitlementFen"] == 21840
    await _audit_ok(admin)


async def test_concurrent_first_notifications_pay_once(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    replies = await asyncio.gather(
        *[_posted(server, buyer, order, transaction_id="4200000777") for _ in range(20)]
    )
    assert all(SUCCESS in reply for reply in replies)
    await wait_settled(buyer, order["id"])
    assert len(await my_entries(buyer)) == 1
    await _audit_ok(admin)


async def test_wrong_amount_is_refused_and_changes_nothing(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    reply = await wechat_pays(buyer.http, order["outTradeNo"], totalFee=1)
    assert FAIL in reply["reply"]
    assert "total_fee" in reply["reply"]
    await server.services.jobs.drain()
    after = await order_of(buyer, order["id"])
    assert after["status"] == "PENDING_PAYMENT"
    assert after["settled"] is False
    assert await my_entries(buyer) == []
    # The right amount still pays it afterwards: the refusal lost nothing.
    reply = await wechat_pays(buyer.http, order["outTradeNo"])
    assert SUCCESS in reply["reply"]
    assert (await wait_settled(buyer, order["id"]))["status"] == "PAID"


async def test_bad_signature_is_refused_and_changes_nothing(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    reply = await _posted(server, buyer, order, bad_signature=True)
    assert FAIL in reply
    assert "signature" in reply
    await server.services.jobs.drain()
    after = await order_of(buyer, order["id"])
    assert after["status"] == "PENDING_PAYMENT"
    assert await my_entries(buyer) == []


async def test_other_merchant_or_unknown_order_is_refused(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    assert FAIL in await _posted(server, buyer, order, mch_id="1999999999")
    assert FAIL in await _posted(server, buyer, order, appid="wxanotherapp0000001")
    assert FAIL in await _posted(server, buyer, order, result_code="FAIL")
    unknown = await _posted(server, buyer, order, out_trade_no="R20260101000000ABCDEF")
    assert FAIL in unknown
    assert "unknown" in unknown
    assert FAIL in (await buyer.http.post("wechat/pay/notify", content=b"<xml><a>")).text
    await server.services.jobs.drain()
    assert (await order_of(buyer, order["id"]))["status"] == "PENDING_PAYMENT"
    assert await my_entries(buyer) == []


async def test_a_second_transaction_for_a_paid_order_is_refused(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    await pay_and_settle(buyer, order)
    reply = await _posted(server, buyer, order, transaction_id="4200000999")
    assert FAIL in reply
    await server.services.jobs.drain()
    assert len(await my_entries(buyer)) == 1


async def test_a_refund_goes_through_wechat_once(server, anonymous, admin, http):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    await pay_and_settle(buyer, order)
    refund = 'mutation($id: ID!) { refundOrder(orderId: $id, reason: "不想要了") { status } }'
    assert (await admin(refund, id=order["id"]))["refundOrder"]["status"] == "REFUNDED"
    assert (await admin.error(refund, id=order["id"])).code == "CONFLICT"
    assert f"RF{order['outTradeNo']}" in server.app.routes[-1].app.state.wechat.refunds
    [entry] = await my_entries(buyer)
    assert entry["status"] == "CANCELLED"
    assert entry["remainingFen"] == 0
