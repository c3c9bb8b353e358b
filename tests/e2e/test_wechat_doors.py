"""WeChat Pay v3 payment notifications and v2 refund notifications, through the real server."""

from __future__ import annotations

import time

from tests.support.client import buy, create_product, my_entries, order_of, wait_settled


async def _pay_v3(http, out_trade_no: str, **flags) -> dict:
    response = await http.post("mock/control/pay-v3", json={"outTradeNo": out_trade_no, **flags})
    response.raise_for_status()
    return response.json()


async def test_a_v3_notification_pays_and_settles_once(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    first = await _pay_v3(buyer.http, order["outTradeNo"])
    assert first["status"] == 204
    settled = await wait_settled(buyer, order["id"])
    assert settled["status"] == "PAID"
    again = await _pay_v3(buyer.http, order["outTradeNo"])
    assert again["status"] == 204
    await server.services.jobs.drain()
    assert len(await my_entries(buyer)) == 1


async def test_bad_v3_notifications_change_nothing(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    for flags in (
        {"tamper": True},
        {"wrongSignature": True},
        {"timestamp": int(time.time()) - 6 * 60},
        {"totalFee": 1},
    ):
        answer = await _pay_v3(buyer.http, order["outTradeNo"], **flags)
        assert answer["status"] == 400, (flags, answer)
        assert '"code":"FAIL"' in answer["body"].replace(" ", "")
    await server.services.jobs.drain()
    assert (await order_of(buyer, order["id"]))["status"] == "PENDING_PAYMENT"
    assert await my_entries(buyer) == []


async def test_the_refund_notification_confirms_our_refund(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    await buyer.http.post("mock/control/pay", json={"outTradeNo": order["outTradeNo"]})
    await wait_settled(buyer, order["id"])
    await admin("mutation($id: ID!) { refundOrder(orderId: $id) { status } }", id=order["id"])
    out_refund_no = f"RF{order['outTradeNo']}"
    for _ in range(2):  # WeChat repeats itself: both answered SUCCESS
        answer = (
            await buyer.http.post("mock/control/refund-notify", json={"outRefundNo": out_refund_no})
        ).json()
        assert "SUCCESS" in answer["reply"], answer
    from app.orders.models import Order

    assert (await Order.get(id=int(order["id"]))).refund_status == "SUCCESS"
