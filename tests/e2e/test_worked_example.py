"""The article's worked example, played through GraphQL and the fake WeChat's notifications."""

from __future__ import annotations

from tests.support.client import buy, create_product, my_entries, pay_and_settle


async def test_four_buyers_in_the_mall_queue(anonymous, admin):
    await admin(
        """mutation { updateRebateSettings(input: {
             extractionRatioBp: 6500, defaultRewardRatioBp: 13000, mallQueue: true, settleOn: PAID
           }) { extractionRatioBp defaultRewardRatioBp } }"""
    )
    product = await create_product(admin, "精选礼盒", 16800)
    a, b, c, d = [await anonymous.login(code) for code in ("a", "b", "c", "d")]

    order_a = await pay_and_settle(a, await buy(a, product))
    assert order_a["lines"][0]["queueKey"] == "mall"
    [entry_a] = await my_entries(a)
    assert entry_a["entitlementFen"] == 21840
    assert entry_a["rewardedFen"] == 0
    assert entry_a["status"] == "WAITING"
    assert entry_a["ratioSource"] == "DEFAULT"
    assert entry_a["position"] == 1
    # A's own contribution had nobody ahead: all 10920 went back to the platform.

    order_b = await pay_and_settle(b, await buy(b, product))
    [entry_a] = await my_entries(a)
    assert entry_a["rewardedFen"] == 10920
    assert entry_a["remainingFen"] == 10920
    assert entry_a["status"] == "WAITING"
    assert entry_a["process"]["items"] == [
        {"fromOrderId": order_b["id"], "amountFen": 10920, "payerNickname": "B"}
    ]
    [entry_b] = await my_entries(b)
    assert entry_b["position"] == 2
    assert entry_b["amountAheadFen"] == 10920

    await pay_and_settle(c, await buy(c, product))
    [entry_a] = await my_entries(a)
    assert entry_a["status"] == "COMPLETED"
    assert entry_a["rewardedFen"] == 21840
    assert entry_a["remainingFen"] == 0
    assert entry_a["progressBp"] == 10000
    assert entry_a["position"] is None
    [entry_b] = await my_entries(b)
    assert entry_b["rewardedFen"] == 0
    assert entry_b["position"] == 1

    await pay_and_settle(d, await buy(d, product))
    [entry_b] = await my_entries(b)
    assert entry_b["rewardedFen"] == 10920
    assert entry_b["status"] == "WAITING"
    [entry_c] = await my_entries(c)
    assert entry_c["rewardedFen"] == 0
    assert entry_c["position"] == 2
    assert entry_c["amountAheadFen"] == 10920
