"""Many buyers paying at once in one queue: FIFO and the books hold (SPEC §7, §19)."""

from __future__ import annotations

import asyncio

from tests.support.client import buy, create_product, my_entries, wait_settled, wechat_pays


async def test_simultaneous_payments_settle_in_queue_order(server, anonymous, admin):
    product = await create_product(admin, "礼盒", 16800)
    buyers = [await anonymous.login(f"buyer{i}") for i in range(12)]
    orders = [await buy(buyer, product) for buyer in buyers]
    replies = await asyncio.gather(
        *[wechat_pays(b.http, o["outTradeNo"]) for b, o in zip(buyers, orders, strict=True)]
    )
    assert all("SUCCESS" in reply["reply"] for reply in replies)
    for buyer, order in zip(buyers, orders, strict=True):
        await wait_settled(buyer, order["id"])
    entries = sorted([(await my_entries(b))[0] for b in buyers], key=lambda e: e["number"])
    assert [e["number"] for e in entries] == list(range(1, 13))
    # Eleven later contributions of 10920 each repay 21840 entries strictly from the head.
    paid_total = sum(e["rewardedFen"] for e in entries)
    assert paid_total == 11 * 10920
    completed = [e for e in entries if e["status"] == "COMPLETED"]
    assert len(completed) == 5
    assert [e["number"] for e in completed] == [1, 2, 3, 4, 5]
    assert entries[5]["rewardedFen"] == 10920
    assert all(e["rewardedFen"] == 0 for e in entries[6:])
    assert [e["position"] for e in entries[5:]] == list(range(1, 8))
    report = (await admin("{ audit { ok violations } }"))["audit"]
    assert report == {"ok": True, "violations": []}
