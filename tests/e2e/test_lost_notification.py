"""A payment whose notification never came is found by pay/orderquery and settled (§20)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.client import buy, create_product, my_entries, order_of, wait_settled
from workers.jobs import reconcile_unpaid


async def test_orderquery_finds_a_silent_payment(server, anonymous, admin, http):
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    silent = (
        await http.post(
            "mock/control/pay", json={"outTradeNo": order["outTradeNo"], "silent": True}
        )
    ).json()
    assert silent["reply"] is None
    assert (await order_of(buyer, order["id"]))["status"] == "PENDING_PAYMENT"
    now = datetime.now(UTC)
    # Too early to ask: WeChat may still be notifying.
    assert await reconcile_unpaid(server.services.wechat, now) == 0
    assert await reconcile_unpaid(server.services.wechat, now + timedelta(minutes=3)) == 1
    assert await reconcile_unpaid(server.services.wechat, now + timedelta(minutes=4)) == 0
    # The next round of the timers settles it (here: handed over as a notification would).
    server.services.jobs.settle_soon(int(order["id"]))
    paid = await wait_settled(buyer, order["id"])
    assert paid["status"] == "PAID"
    [entry] = await my_entries(buyer)
    assert entry["entitlementFen"] == 21840


async def test_no_field_of_the_api_can_carry_a_session_key():
    from graphql_schema.schema import schema

    names = {
        field.lower()
        for type_ in schema._schema.type_map.values()
        for field in getattr(type_, "fields", {}) or {}
    }
    assert not [name for name in names if "session" in name]
