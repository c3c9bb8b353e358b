"""The queue law of SPEC §3 (which queue a line belongs to) and §4 (the settlement event).

Every amount below is worked out by hand. Plugin defaults unless a test says otherwise:
extraction 65% (6500 bp), default reward 130% (13000 bp), points exchange 100%, settleOn PAID,
rewardOrder QUEUE_ORDER. `apply(amount, bp) = amount * bp // 10000`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import (
    ENTRY_FIELDS,
    ORDER_FIELDS,
    Api,
    my_entries,
    order_of,
    pay_and_settle,
    wait_settled,
    wechat_pays,
)

UPDATE_SETTINGS = """mutation($input: RebateSettingsInput!) {
  updateRebateSettings(input: $input) { enabled settleOn extractionRatioBp } }"""
UPSERT_PRODUCT = """mutation($input: ProductInput!) {
  upsertProduct(input: $input) { id source storeId listed rebate { enabled ratioBp } } }"""
UPSERT_STORE = "mutation($input: StoreInput!) { upsertStore(input: $input) { id } }"
CREATE_ORDER = (
    "mutation($input: CreateOrderInput!) { createOrder(input: $input) { " + ORDER_FIELDS + " } }"
)
CASHIER_ORDER = (
    "mutation($input: CashierOrderInput!) { createCashierOrder(input: $input) { "
    + ORDER_FIELDS
    + " } }"
)
COMPLETE = "mutation($id: ID!) { completeOrder(orderId: $id) { id status } }"
CONFIRM = "mutation($id: ID!) { confirmReceipt(orderId: $id) { id status } }"
REFUND = "mutation($id: ID!) { refundOrder(orderId: $id) { id status } }"
EXCHANGE = (
    "mutation($id: ID!, $target: ExchangeTarget!) { exchangeEntry(entryId: $id, target: $target) "
    "{ id status } }"
)
WALLET = "{ wallet { balanceFen points loveValue } }"
MY_ORDERS = "{ myOrders(first: 100) { items { id status } } }"


# ---------------------------------------------------------------- helpers


async def settings(admin: Api, **change: Any) -> None:
    await admin(UPDATE_SETTINGS, input=change)


async def product(admin: Api, name: str, price_fen: int, **fields: Any) -> str:
    """A product; `rebate` defaults to {enabled: true}; other ProductInput fields pass through."""
    data = {"name": name, "priceFen": price_fen, "rebate": {"enabled": True}, **fields}
    return (await admin(UPSERT_PRODUCT, input=data))["upsertProduct"]["id"]


async def store(admin: Api, name: str, *, goods: dict | None = None, cashier: dict | None = None):
    data: dict[str, Any] = {"name": name}
    if goods is not None:
        data["goodsRebate"] = goods
    if cashier is not None:
        data["cashierRebate"] = cashier
    return (await admin(UPSERT_STORE, input=data))["upsertStore"]["id"]


async def order(consumer: Api, *lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    """Create an order of `(productId, quantity)` lines, in the order given."""
    data = {"lines": [{"productId": p, "quantity": q} for p, q in lines], **extra}
    return (await consumer(CREATE_ORDER, input=data))["createOrder"]


async def cashier(consumer: Api, store_id: str, amount_fen: int) -> dict[str, Any]:
    data = {"storeId": store_id, "amountFen": amount_fen}
    return (await consumer(CASHIER_ORDER, input=data))["createCashierOrder"]


async def bought(consumer: Api, product_id: str, quantity: int = 1) -> dict[str, Any]:
    """Buy one line and let it settle (settleOn PAID)."""
    return await pay_and_settle(consumer, await order(consumer, (product_id, quantity)))


async def paid_at_cashier(consumer: Api, store_id: str, amount_fen: int) -> dict[str, Any]:
    return await pay_and_settle(consumer, await cashier(consumer, store_id, amount_fen))


async def entries(consumer: Api) -> list[dict[str, Any]]:
    """The consumer's entries in entry-number order (several queues: by queue, then number)."""
    return sorted(await my_entries(consumer), key=lambda e: (e["queueKey"], e["number"]))


async def only_entry(consumer: Api) -> dict[str, Any]:
    [entry] = await my_entries(consumer)
    return entry


async def entry_by_id(api: Api, entry_id: str) -> dict[str, Any]:
    return (await api(f"query($id: ID!) {{ entry(id: $id) {{ {ENTRY_FIELDS} }} }}", id=entry_id))[
        "entry"
    ]


async def wallet(consumer: Api) -> dict[str, Any]:
    return (await consumer(WALLET))["wallet"]


async def complete_and_settle(admin: Api, order_id: str) -> dict[str, Any]:
    assert (await admin(COMPLETE, id=order_id))["completeOrder"]["status"] == "COMPLETED"
    return await wait_settled(admin, order_id)


async def points_for(consumer: Api, admin: Api, price_fen: int) -> int:
    """Give `consumer` points the way a buyer gets them: buy, then exchange the waiting entry.

    Must run while the consumer's new entry is the only thing they hold; returns the points.
    """
    item = await product(admin, f"points-{consumer.user_id}", price_fen)
    await bought(consumer, item)
    [entry] = [e for e in await my_entries(consumer) if e["status"] == "WAITING"]
    await consumer(EXCHANGE, id=entry["id"], target="POINTS")
    return (await wallet(consumer))["points"]


# ---------------------------------------------------------------- §3 queues


async def test_mall_goods_of_every_source_share_the_mall_queue(anonymous, admin):
    """§3: mallQueue on → self-operated, supplier and supply-chain goods all join `mall`."""
    await settings(admin, mallQueue=True)
    own = await product(admin, "自营", 1000, source="SELF_OPERATED")
    supplier = await product(admin, "供应商", 1000, source="SUPPLIER", supplyPriceFen=600)
    chain = await product(admin, "聚合供应链", 1000, source="SUPPLY_CHAIN")
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    # A: entitlement 1000×130% = 1300; A's own contribution 650 has nobody ahead (returned).
    order_a = await bought(a, own)
    assert [line["queueKey"] for line in order_a["lines"]] == ["mall"]
    # B buys a supplier product: same queue, 1000×65% = 650 goes to A.
    order_b = await bought(b, supplier)
    assert [line["queueKey"] for line in order_b["lines"]] == ["mall"]
    entry_a = await only_entry(a)
    assert (entry_a["queueKey"], entry_a["rewardedFen"], entry_a["remainingFen"]) == (
        "mall",
        650,
        650,
    )
    # C buys a supply-chain product: 650 more completes A (1300).
    order_c = await bought(c, chain)
    assert [line["queueKey"] for line in order_c["lines"]] == ["mall"]
    entry_a = await only_entry(a)
    assert (entry_a["status"], entry_a["rewardedFen"], entry_a["remainingFen"]) == (
        "COMPLETED",
        1300,
        0,
    )
    entry_b, entry_c = await only_entry(b), await only_entry(c)
    assert [e["number"] for e in (entry_a, entry_b, entry_c)] == [1, 2, 3]
    assert entry_b["queueKey"] == entry_c["queueKey"] == "mall"
    assert (entry_b["rewardedFen"], entry_b["position"]) == (0, 1)
    assert (await wallet(a))["balanceFen"] == 1300


async def test_mall_queue_off_gives_each_product_its_own_queue(anonymous, admin):
    """§3: mallQueue off → a mall line joins `product:<productId>`."""
    await settings(admin, mallQueue=False)
    first = await product(admin, "甲", 1000)
    second = await product(admin, "乙", 1000)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    order_a = await bought(a, first)
    assert order_a["lines"][0]["queueKey"] == f"product:{first}"
    # B's 650 goes to the queue of the second product, where nobody waits: A gets nothing.
    order_b = await bought(b, second)
    assert order_b["lines"][0]["queueKey"] == f"product:{second}"
    entry_a, entry_b = await only_entry(a), await only_entry(b)
    assert (entry_a["queueKey"], entry_a["rewardedFen"]) == (f"product:{first}", 0)
    assert (entry_b["queueKey"], entry_b["number"], entry_b["position"]) == (
        f"product:{second}",
        1,
        1,
    )
    # C buys the first product: 1000×65% = 650 to A; B's queue is untouched.
    await bought(c, first)
    assert (await only_entry(a))["rewardedFen"] == 650
    assert (await only_entry(b))["rewardedFen"] == 0
    assert (await only_entry(c))["number"] == 2


async def test_store_goods_share_the_stores_queue_when_all_stores_queue_is_on(anonymous, admin):
    """§3: allStoresQueue on → every store's online goods join `stores`, apart from `mall`."""
    await settings(admin, allStoresQueue=True)
    s1 = await store(admin, "一店", goods={"enabled": True})
    s2 = await store(admin, "二店", goods={"enabled": True})
    g1 = await product(admin, "一店商品", 1000, storeId=s1)
    g2 = await product(admin, "二店商品", 1000, storeId=s2)
    mall = await product(admin, "商城商品", 1000)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    assert (await bought(a, g1))["lines"][0]["queueKey"] == "stores"
    # B buys at the other store: same `stores` queue, 650 to A.
    assert (await bought(b, g2))["lines"][0]["queueKey"] == "stores"
    assert (await only_entry(a))["rewardedFen"] == 650
    # C buys mall goods: the `mall` queue, A unchanged.
    assert (await bought(c, mall))["lines"][0]["queueKey"] == "mall"
    entry_a = await only_entry(a)
    assert (entry_a["queueKey"], entry_a["rewardedFen"], entry_a["remainingFen"]) == (
        "stores",
        650,
        650,
    )
    assert (await only_entry(b))["queueKey"] == "stores"


async def test_store_goods_queue_per_store_when_all_stores_queue_is_off(anonymous, admin):
    """§3: allStoresQueue off → a store's goods join `store:<storeId>` (one queue per store)."""
    await settings(admin, allStoresQueue=False)
    s1 = await store(admin, "一店", goods={"enabled": True})
    s2 = await store(admin, "二店", goods={"enabled": True})
    g1 = await product(admin, "一店商品", 1000, storeId=s1)
    g1_other = await product(admin, "一店另一商品", 1000, storeId=s1)
    g2 = await product(admin, "二店商品", 1000, storeId=s2)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    assert (await bought(a, g1))["lines"][0]["queueKey"] == f"store:{s1}"
    # Another store: another queue, A gets nothing.
    assert (await bought(b, g2))["lines"][0]["queueKey"] == f"store:{s2}"
    assert (await only_entry(a))["rewardedFen"] == 0
    assert (await only_entry(b))["queueKey"] == f"store:{s2}"
    # Another product of the same store: the same queue, 650 to A.
    assert (await bought(c, g1_other))["lines"][0]["queueKey"] == f"store:{s1}"
    entry_a = await only_entry(a)
    assert (entry_a["queueKey"], entry_a["rewardedFen"]) == (f"store:{s1}", 650)
    assert (await only_entry(b))["rewardedFen"] == 0


async def test_cashier_payments_share_the_cashiers_queue_when_on(anonymous, admin):
    """§3: allCashiersQueue on → payments at every store's cashier join `cashiers`."""
    await settings(admin, allCashiersQueue=True)
    s1 = await store(admin, "一店", cashier={"enabled": True}, goods={"enabled": True})
    s2 = await store(admin, "二店", cashier={"enabled": True})
    g1 = await product(admin, "一店商品", 1000, storeId=s1)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    paid_a = await paid_at_cashier(a, s1, 1000)
    assert (paid_a["kind"], paid_a["lines"][0]["queueKey"]) == ("CASHIER", "cashiers")
    # B pays at the other store's cashier: same queue, 650 to A.
    assert (await paid_at_cashier(b, s2, 1000))["lines"][0]["queueKey"] == "cashiers"
    assert (await only_entry(a))["rewardedFen"] == 650
    # C buys the first store's online goods: store:<s1>, not the cashiers' queue.
    assert (await bought(c, g1))["lines"][0]["queueKey"] == f"store:{s1}"
    entry_a = await only_entry(a)
    assert (entry_a["queueKey"], entry_a["rewardedFen"]) == ("cashiers", 650)


async def test_cashier_queue_per_store_when_all_cashiers_queue_is_off(anonymous, admin):
    """§3: allCashiersQueue off → a cashier payment joins `cashier:<storeId>`."""
    await settings(admin, allCashiersQueue=False)
    s1 = await store(admin, "一店", cashier={"enabled": True})
    s2 = await store(admin, "二店", cashier={"enabled": True})
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    assert (await paid_at_cashier(a, s1, 1000))["lines"][0]["queueKey"] == f"cashier:{s1}"
    assert (await paid_at_cashier(b, s2, 1000))["lines"][0]["queueKey"] == f"cashier:{s2}"
    assert (await only_entry(a))["rewardedFen"] == 0
    # Same cashier again: 1000×65% = 650 to A.
    assert (await paid_at_cashier(c, s1, 1000))["lines"][0]["queueKey"] == f"cashier:{s1}"
    entry_a = await only_entry(a)
    assert (entry_a["queueKey"], entry_a["rewardedFen"]) == (f"cashier:{s1}", 650)
    assert (await only_entry(b))["queueKey"] == f"cashier:{s2}"
    assert (await only_entry(b))["rewardedFen"] == 0


async def test_a_delisted_products_queue_gets_no_more_contributions(server, anonymous, admin):
    """§3: a product queue whose product is delisted gets no more contributions; its entries
    wait until they are exchanged."""
    await settings(admin, mallQueue=False)
    item = await product(admin, "下架品", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await bought(a, item)
    # B's order is placed while the product is listed, and paid after it was delisted.
    order_b = await order(b, (item, 1))
    await admin(UPSERT_PRODUCT, input={"id": item, "listed": False})
    await pay_and_settle(b, order_b)
    await server.services.jobs.drain()
    # B's 1000×65% = 650 would have gone to A: the queue got nothing.
    entry_a = await only_entry(a)
    assert (entry_a["status"], entry_a["rewardedFen"], entry_a["remainingFen"]) == (
        "WAITING",
        0,
        1300,
    )
    assert entry_a["position"] == 1
    assert (await wallet(a))["balanceFen"] == 0
    # The entry waits until it is exchanged: 1300 remaining × 100% = 1300 points.
    exchanged = (await a(EXCHANGE, id=entry_a["id"], target="POINTS"))["exchangeEntry"]
    assert exchanged["status"] == "EXCHANGED"
    assert (await wallet(a))["points"] == 1300


async def test_a_delisted_product_still_feeds_the_shared_mall_queue(anonymous, admin):
    """§3/§4: only a *product* queue stops at delisting; in `mall` its lines still contribute."""
    await settings(admin, mallQueue=True)
    item = await product(admin, "下架品", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await bought(a, item)
    order_b = await order(b, (item, 1))
    await admin(UPSERT_PRODUCT, input={"id": item, "listed": False})
    settled_b = await pay_and_settle(b, order_b)
    assert settled_b["lines"][0]["queueKey"] == "mall"
    # B's 650 goes to A in the shared queue.
    assert (await only_entry(a))["rewardedFen"] == 650


# ---------------------------------------------------------------- §4 the settlement event


async def test_settle_on_completed_waits_for_completion(server, anonymous, admin):
    """§4: settleOn COMPLETED → nothing joins or contributes until completeOrder/confirmReceipt."""
    await settings(admin, settleOn="COMPLETED")
    item = await product(admin, "礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")

    order_a = await order(a, (item, 1))
    assert "SUCCESS" in (await wechat_pays(a.http, order_a["outTradeNo"]))["reply"]
    await server.services.jobs.drain()
    paid_a = await order_of(a, order_a["id"])
    assert (paid_a["status"], paid_a["settled"]) == ("PAID", False)
    assert paid_a["lines"][0]["queueKey"] is None
    assert await my_entries(a) == []

    # The operator completes A's order: A joins (its own 650 is returned: nobody ahead).
    settled_a = await complete_and_settle(admin, order_a["id"])
    assert (settled_a["status"], settled_a["lines"][0]["queueKey"]) == ("COMPLETED", "mall")
    entry_a = await only_entry(a)
    assert (entry_a["entitlementFen"], entry_a["rewardedFen"]) == (1300, 0)

    # B pays: still nothing, A is not paid yet.
    order_b = await order(b, (item, 1))
    await wechat_pays(b.http, order_b["outTradeNo"])
    await server.services.jobs.drain()
    assert (await order_of(b, order_b["id"]))["settled"] is False
    assert await my_entries(b) == []
    assert (await only_entry(a))["rewardedFen"] == 0

    # B confirms receipt: the settlement event; 1000×65% = 650 to A, then B joins.
    confirmed = (await b(CONFIRM, id=order_b["id"]))["confirmReceipt"]
    assert confirmed["status"] == "COMPLETED"
    await wait_settled(b, order_b["id"])
    assert (await only_entry(a))["rewardedFen"] == 650
    entry_b = await only_entry(b)
    assert (entry_b["status"], entry_b["entitlementFen"], entry_b["rewardedFen"]) == (
        "WAITING",
        1300,
        0,
    )
    assert (await wallet(a))["balanceFen"] == 650


async def test_cashier_payment_is_complete_when_paid(anonymous, admin):
    """§4: cashier payments are complete when paid, so they settle at payment under COMPLETED."""
    await settings(admin, settleOn="COMPLETED")
    shop = await store(admin, "门店", cashier={"enabled": True})
    a, b = await anonymous.login("a"), await anonymous.login("b")

    paid_a = await paid_at_cashier(a, shop, 1000)
    assert (paid_a["status"], paid_a["settled"]) == ("COMPLETED", True)
    assert (await only_entry(a))["entitlementFen"] == 1300
    await paid_at_cashier(b, shop, 1000)
    # B's 650 is paid to A at B's payment.
    assert (await only_entry(a))["rewardedFen"] == 650
    # Already complete: completing it again is a conflict and changes nothing.
    assert (await admin.error(COMPLETE, id=paid_a["id"])).code == "CONFLICT"
    assert (await order_of(a, paid_a["id"]))["status"] == "COMPLETED"
    assert (await only_entry(a))["rewardedFen"] == 650


async def test_a_line_that_earns_no_entry_still_contributes_outside_its_window(anonymous, admin):
    """§4.1: every rebate-enabled line contributes, also outside a reward time window."""
    item = await product(
        admin, "限时品", 1000, rebate={"rewardWindows": [{"start": "08:00", "end": "09:00"}]}
    )
    a, b = await anonymous.login("a"), await anonymous.login("b")
    order_a = await order(a, (item, 1))
    await wechat_pays(a.http, order_a["outTradeNo"], timeEnd="20261125083000")
    await wait_settled(a, order_a["id"])
    assert (await only_entry(a))["entitlementFen"] == 1300
    # B pays at 10:30, outside 08:00–09:00: no entry, but 1000×65% = 650 still goes to A.
    order_b = await order(b, (item, 1))
    await wechat_pays(b.http, order_b["outTradeNo"], timeEnd="20261125103000")
    settled_b = await wait_settled(b, order_b["id"])
    assert settled_b["lines"][0]["queueKey"] == "mall"
    assert await my_entries(b) == []
    assert (await only_entry(a))["rewardedFen"] == 650


async def test_a_line_over_its_limit_still_contributes(anonymous, admin):
    """§4.1: a line over limitPerUserTotal earns no entry but contributes."""
    item = await product(admin, "限购品", 1000, rebate={"limitPerUserTotal": 1})
    a = await anonymous.login("a")
    await bought(a, item)
    # A's second order: over the limit of one entry, yet its 650 goes to A's first entry
    # (another order, so no self-payment).
    await bought(a, item)
    entry = await only_entry(a)
    assert (entry["rewardedFen"], entry["remainingFen"], entry["status"]) == (650, 650, "WAITING")
    assert (await wallet(a))["balanceFen"] == 650


async def test_a_not_participating_deduction_order_still_contributes(anonymous, admin):
    """§4.1: under deductionMode NOT_PARTICIPATE a deduction order earns no entry but contributes
    its cash-paid contribution."""
    await settings(admin, deductionMode="NOT_PARTICIPATE")
    item = await product(admin, "礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    # B gets points first: a 100 fen buy (entitlement 130) exchanged at 100% → 130 points.
    # That order's own contribution 65 has nobody ahead: returned.
    assert await points_for(b, admin, 100) == 130
    await bought(a, item)
    # B pays 1000 with 100 points: cash 900, contribution 900×65% = 585 to A; no entry for B.
    order_b = await order(b, (item, 1), pointsToUse=100)
    assert (order_b["deductionFen"], order_b["payableFen"]) == (100, 900)
    settled_b = await pay_and_settle(b, order_b)
    assert settled_b["lines"][0]["paidFen"] == 900
    assert [e["status"] for e in await my_entries(b)] == ["EXCHANGED"]
    entry_a = await only_entry(a)
    assert (entry_a["rewardedFen"], entry_a["remainingFen"]) == (585, 715)
    assert (await wallet(b))["points"] == 30


async def test_an_order_never_pays_itself(anonymous, admin):
    """§4.3: all contributions of an order are distributed before any of its entries join."""
    small = await product(admin, "小", 1000)
    big = await product(admin, "大", 2000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    # A's two lines contribute 650 and 1300 to an empty queue: both returned. Had line 1's entry
    # joined first, line 2's 1300 would have completed it (entitlement 1300).
    order_a = await pay_and_settle(a, await order(a, (small, 1), (big, 1)))
    assert [line["queueKey"] for line in order_a["lines"]] == ["mall", "mall"]
    first, second = await entries(a)
    assert (first["entitlementFen"], first["rewardedFen"], first["status"]) == (1300, 0, "WAITING")
    assert (second["entitlementFen"], second["rewardedFen"]) == (2600, 0)
    assert (await wallet(a))["balanceFen"] == 0
    # Nor later: what was returned is not held for A. B's 650 pays A's first entry, no more.
    order_b = await bought(b, small)
    first, second = await entries(a)
    assert (first["rewardedFen"], first["remainingFen"]) == (650, 650)
    assert first["process"]["items"] == [
        {"fromOrderId": order_b["id"], "amountFen": 650, "payerNickname": "B"}
    ]
    assert second["rewardedFen"] == 0
    assert (await wallet(a))["balanceFen"] == 650


async def test_what_the_entries_cannot_take_is_returned_not_carried_over(anonymous, admin):
    """§4.2: a contribution is paid out at once; the rest is returned, nothing is carried over."""
    small = await product(admin, "小", 100)
    big = await product(admin, "大", 1000)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await bought(a, small)  # entitlement 100×130% = 130
    # B's 1000×65% = 650: 130 completes A, 520 is returned (not kept for B's own entry).
    await bought(b, big)
    entry_a = await only_entry(a)
    assert (entry_a["status"], entry_a["rewardedFen"]) == ("COMPLETED", 130)
    entry_b = await only_entry(b)
    assert (entry_b["rewardedFen"], entry_b["remainingFen"], entry_b["position"]) == (0, 1300, 1)
    # C's 100×65% = 65 goes to B: exactly 65, the 520 returned earlier is gone.
    await bought(c, small)
    assert (await only_entry(b))["rewardedFen"] == 65
    assert (await wallet(b))["balanceFen"] == 65


async def test_an_orders_entries_join_in_the_order_of_its_lines(anonymous, admin):
    """§4.3: an order's entries join in the order of its lines (as given, not by product)."""
    thousand = await product(admin, "千", 1000)
    five_hundred = await product(admin, "五百", 500)
    a, c = await anonymous.login("a"), await anonymous.login("c")
    # Lines given as [500, 1000]: entries 1 (paid 500, entitlement 650), 2 (1300).
    order_a = await pay_and_settle(a, await order(a, (five_hundred, 1), (thousand, 1)))
    line_ids = [line["id"] for line in order_a["lines"]]
    assert [line["productId"] for line in order_a["lines"]] == [five_hundred, thousand]
    first, second = await entries(a)
    assert [first["number"], second["number"]] == [1, 2]
    assert [first["orderLineId"], second["orderLineId"]] == line_ids
    assert [first["entitlementFen"], second["entitlementFen"]] == [650, 1300]
    # C's 650 completes the first line's entry exactly and leaves the second untouched.
    await bought(c, thousand)
    first, second = await entries(a)
    assert (first["status"], first["rewardedFen"]) == ("COMPLETED", 650)
    assert (second["status"], second["rewardedFen"], second["position"]) == ("WAITING", 0, 1)


async def test_line_paid_fen_is_after_deductions_allocated_in_proportion(anonymous, admin):
    """§4: linePaidFen is the cash after deductions, allocated to lines in proportion, rounding
    down, the remainder to the last line in the order given; points are held at creation."""
    big = await product(admin, "二百", 200)
    little = await product(admin, "一百", 100)
    w, p = await anonymous.login("w"), await anonymous.login("p")
    await bought(w, await product(admin, "千", 1000))  # W waits for 1300
    # P buys 100 (65 to W) and exchanges the 130 entitlement for 130 points.
    assert await points_for(p, admin, 100) == 130
    assert (await only_entry(w))["rewardedFen"] == 65

    # Lines [200, 100], 100 points: 100×200//300 = 66 (66.67 rounded down) on line 1, the
    # remainder 100 − 66 = 34 on line 2 → paid 134 and 66 (rounding to nearest would give 133/67).
    created = await order(p, (big, 1), (little, 1), pointsToUse=100)
    assert (created["totalFen"], created["deductionFen"], created["payableFen"]) == (300, 100, 200)
    assert [(ln["amountFen"], ln["paidFen"]) for ln in created["lines"]] == [(200, 134), (100, 66)]
    assert (await wallet(p))["points"] == 30  # held when the order is created

    settled = await pay_and_settle(p, created)
    assert [ln["paidFen"] for ln in settled["lines"]] == [134, 66]
    # Contributions on the cash: 134×65% = 87 (87.1), 66×65% = 42 (42.9) → W: 65 + 87 + 42 = 194.
    entry_w = await only_entry(w)
    assert entry_w["rewardedFen"] == 194
    assert [item["amountFen"] for item in entry_w["process"]["items"]] == [65, 87, 42]
    # Entitlements on the cash: 134×130% = 174 (174.2), 66×130% = 85 (85.8).
    waiting = [e for e in await entries(p) if e["status"] == "WAITING"]
    assert [(e["paidFen"], e["entitlementFen"]) for e in waiting] == [(134, 174), (66, 85)]
    assert (await wallet(p))["points"] == 30


async def test_a_payable_zero_order_is_paid_at_once_and_refund_returns_points(
    anonymous, admin, http
):
    """§4: a payable-0 order is paid at once without WeChat; a refund gives the points back."""
    item = await product(admin, "一百", 100)
    p = await anonymous.login("p")
    assert await points_for(p, admin, 100) == 130

    created = await order(p, (item, 1), pointsToUse=100)
    assert (created["status"], created["totalFen"], created["payableFen"]) == ("PAID", 100, 0)
    assert created["deductionFen"] == 100
    assert created["payParams"] is None
    assert created["lines"][0]["paidFen"] == 0
    assert (await wallet(p))["points"] == 30
    # WeChat never heard of it.
    known = (await http.get("mock/control/orders")).json()
    assert created["outTradeNo"] not in {o["out_trade_no"] for o in known}
    settled = await wait_settled(p, created["id"])
    assert (settled["status"], settled["settled"]) == ("PAID", True)

    refunded = (await admin(REFUND, id=created["id"]))["refundOrder"]
    assert refunded["status"] == "REFUNDED"
    assert (await wallet(p))["points"] == 130


async def test_refunding_a_paid_order_gives_its_points_back(anonymous, admin):
    """§4: points used on a WeChat-paid order come back when it is refunded."""
    item = await product(admin, "一千", 1000)
    p = await anonymous.login("p")
    assert await points_for(p, admin, 100) == 130
    created = await order(p, (item, 1), pointsToUse=130)
    assert (created["deductionFen"], created["payableFen"]) == (130, 870)
    assert (await wallet(p))["points"] == 0
    await pay_and_settle(p, created)
    assert (await admin(REFUND, id=created["id"]))["refundOrder"]["status"] == "REFUNDED"
    assert (await wallet(p))["points"] == 130


async def test_using_more_points_or_love_value_than_held_is_bad_input(anonymous, admin):
    """§4: asking for more points or love value than the wallet holds is BAD_USER_INPUT."""
    item = await product(admin, "一千", 1000)
    p = await anonymous.login("p")
    assert await points_for(p, admin, 100) == 130
    before_orders = (await p(MY_ORDERS))["myOrders"]["items"]
    before_wallet = await wallet(p)
    lines = [{"productId": item, "quantity": 1}]
    error = await p.error(CREATE_ORDER, input={"lines": lines, "pointsToUse": 131})
    assert error.code == "BAD_USER_INPUT"
    error = await p.error(CREATE_ORDER, input={"lines": lines, "loveValueToUse": 1})
    assert error.code == "BAD_USER_INPUT"
    assert (await p(MY_ORDERS))["myOrders"]["items"] == before_orders
    assert await wallet(p) == before_wallet == {"balanceFen": 0, "points": 130, "loveValue": 0}


async def test_extraction_ratio_product_then_plugin(anonymous, admin):
    """§4: a mall line's extraction ratio is its product's when set, else the plugin's."""
    await settings(admin, extractionRatioBp=5000)
    plain = await product(admin, "普通", 1000)
    own = await product(admin, "自定", 1000, rebate={"extractionRatioBp": 2000})
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await bought(a, plain)
    await bought(b, own)  # 1000×20% = 200 to A
    assert (await only_entry(a))["rewardedFen"] == 200
    await bought(c, plain)  # 1000×50% (plugin) = 500 to A
    assert (await only_entry(a))["rewardedFen"] == 700


async def test_extraction_ratio_store_product_then_store_goods_then_plugin(anonymous, admin):
    """§4: a store-goods line's extraction: store product → store goods → plugin."""
    await settings(admin, extractionRatioBp=5000, allStoresQueue=False)
    shop = await store(admin, "一店", goods={"enabled": True, "extractionRatioBp": 3000})
    other = await store(admin, "二店", goods={"enabled": True})
    own = await product(admin, "自定", 1000, storeId=shop, rebate={"extractionRatioBp": 2000})
    plain = await product(admin, "普通", 1000, storeId=shop)
    elsewhere = await product(admin, "二店品", 1000, storeId=other)
    a, b, c, d, e = [await anonymous.login(code) for code in ("a", "b", "c", "d", "e")]
    await bought(a, plain)
    await bought(b, own)  # product's 20%: 200 to A
    assert (await only_entry(a))["rewardedFen"] == 200
    await bought(c, plain)  # store goods' 30%: 300 to A
    assert (await only_entry(a))["rewardedFen"] == 500
    await bought(d, elsewhere)
    await bought(e, elsewhere)  # neither sets it: plugin 50% = 500 to D
    assert (await only_entry(d))["rewardedFen"] == 500


async def test_extraction_ratio_cashier_then_plugin(anonymous, admin):
    """§4: a cashier payment's extraction is the cashier rule's, else the plugin's (never the
    store goods rule's)."""
    await settings(admin, extractionRatioBp=5000)
    shop = await store(admin, "一店", cashier={"enabled": True, "extractionRatioBp": 3000})
    other = await store(
        admin,
        "二店",
        cashier={"enabled": True},
        goods={"enabled": True, "extractionRatioBp": 2000},
    )
    a, b, d, e = [await anonymous.login(code) for code in ("a", "b", "d", "e")]
    await paid_at_cashier(a, shop, 1000)
    await paid_at_cashier(b, shop, 1000)  # cashier's 30%: 300 to A
    assert (await only_entry(a))["rewardedFen"] == 300
    await paid_at_cashier(d, other, 1000)
    await paid_at_cashier(e, other, 1000)  # plugin 50% = 500 to D, not the goods' 20%
    assert (await only_entry(d))["rewardedFen"] == 500


async def test_a_mall_line_is_enabled_by_its_products_rule(server, anonymous, admin):
    """§4: a mall line is rebate-enabled exactly when its product's rule is enabled."""
    on = await product(admin, "开", 1000)
    off = await product(admin, "关", 1000, rebate={"enabled": False})
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await bought(a, on)
    # B's product has the rebate off: no contribution, no entry, in no queue.
    order_b = await bought(b, off)
    assert order_b["lines"][0]["queueKey"] is None
    await server.services.jobs.drain()
    assert await my_entries(b) == []
    assert (await only_entry(a))["rewardedFen"] == 0
    # Switched on, the same product contributes 650 and joins.
    await admin(UPSERT_PRODUCT, input={"id": off, "rebate": {"enabled": True}})
    assert (await bought(c, off))["lines"][0]["queueKey"] == "mall"
    assert (await only_entry(a))["rewardedFen"] == 650
    assert (await only_entry(c))["entitlementFen"] == 1300


async def test_a_store_goods_line_needs_both_the_store_and_the_product_rule(
    server, anonymous, admin
):
    """§4: a store-goods line is rebate-enabled when both the store's goods rule and the
    product's rule are enabled."""
    shop = await store(admin, "门店", goods={"enabled": True})
    item = await product(admin, "门店品", 1000, storeId=shop)
    a, b, c, d = [await anonymous.login(code) for code in ("a", "b", "c", "d")]
    await bought(a, item)
    # Store goods rule off, product rule on: nothing.
    await admin(UPSERT_STORE, input={"id": shop, "goodsRebate": {"enabled": False}})
    assert (await bought(b, item))["lines"][0]["queueKey"] is None
    # Store goods rule on, product rule off: nothing.
    await admin(UPSERT_STORE, input={"id": shop, "goodsRebate": {"enabled": True}})
    await admin(UPSERT_PRODUCT, input={"id": item, "rebate": {"enabled": False}})
    assert (await bought(c, item))["lines"][0]["queueKey"] is None
    await server.services.jobs.drain()
    assert await my_entries(b) == []
    assert await my_entries(c) == []
    assert (await only_entry(a))["rewardedFen"] == 0
    # Both on: 650 to A, D joins.
    await admin(UPSERT_PRODUCT, input={"id": item, "rebate": {"enabled": True}})
    assert (await bought(d, item))["lines"][0]["queueKey"] == f"store:{shop}"
    assert (await only_entry(a))["rewardedFen"] == 650
    assert (await only_entry(d))["entitlementFen"] == 1300


async def test_a_cashier_payment_is_enabled_by_the_store_cashier_rule(server, anonymous, admin):
    """§4: a cashier payment is rebate-enabled when the store's cashier rule is enabled (the
    goods rule does not matter)."""
    shop = await store(admin, "门店", cashier={"enabled": True}, goods={"enabled": False})
    a, b = await anonymous.login("a"), await anonymous.login("b")
    assert (await paid_at_cashier(a, shop, 1000))["lines"][0]["queueKey"] == f"cashier:{shop}"
    assert (await only_entry(a))["entitlementFen"] == 1300
    await admin(UPSERT_STORE, input={"id": shop, "cashierRebate": {"enabled": False}})
    assert (await paid_at_cashier(b, shop, 1000))["lines"][0]["queueKey"] is None
    await server.services.jobs.drain()
    assert await my_entries(b) == []
    assert (await only_entry(a))["rewardedFen"] == 0


@pytest.mark.parametrize("default", [True, False])
async def test_a_new_product_takes_enabled_from_the_plugin_unless_given(
    server, anonymous, admin, default
):
    """§4: a new product takes `enabled` from newProductsEnabledByDefault unless given."""
    await settings(admin, newProductsEnabledByDefault=default)

    async def created(**fields: Any) -> dict[str, Any]:
        data = {"name": "新品", "priceFen": 1000, **fields}
        return (await admin(UPSERT_PRODUCT, input=data))["upsertProduct"]

    bare = await created()
    assert bare["rebate"]["enabled"] is default
    # A rule given without `enabled` still takes the default; an explicit one wins.
    assert (await created(rebate={"ratioBp": 15000}))["rebate"] == {
        "enabled": default,
        "ratioBp": 15000,
    }
    assert (await created(rebate={"enabled": not default}))["rebate"]["enabled"] is (not default)
    # Changing the default later does not touch existing products.
    await settings(admin, newProductsEnabledByDefault=not default)
    buyer = await anonymous.login("x")
    settled = await bought(buyer, bare["id"])
    await server.services.jobs.drain()
    assert (settled["lines"][0]["queueKey"] is not None) is default
    assert len(await my_entries(buyer)) == (1 if default else 0)


async def test_every_setting_is_read_at_the_settlement_event(server, anonymous, admin):
    """§4: settings are read at the settlement event: a ratio changed between payment and
    completion (settleOn COMPLETED) applies."""
    await settings(admin, settleOn="COMPLETED")
    item = await product(admin, "礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    order_a = await order(a, (item, 1))
    await wechat_pays(a.http, order_a["outTradeNo"])
    await complete_and_settle(admin, order_a["id"])
    order_b = await order(b, (item, 1))
    await wechat_pays(b.http, order_b["outTradeNo"])
    await server.services.jobs.drain()
    # Paid under 65% / 130%; completed under 50% / 150%.
    await settings(admin, extractionRatioBp=5000, defaultRewardRatioBp=15000)
    await complete_and_settle(admin, order_b["id"])
    assert (await only_entry(a))["rewardedFen"] == 500  # 1000×50%
    entry_b = await only_entry(b)
    assert (entry_b["ratioBp"], entry_b["ratioSource"], entry_b["entitlementFen"]) == (
        15000,
        "DEFAULT",
        1500,
    )


async def test_the_queue_key_is_read_at_the_settlement_event(server, anonymous, admin):
    """§4: mallQueue switched off between payment and completion sends the line to its
    product's queue."""
    await settings(admin, settleOn="COMPLETED", mallQueue=True)
    item = await product(admin, "礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    order_a = await order(a, (item, 1))
    await wechat_pays(a.http, order_a["outTradeNo"])
    assert (await complete_and_settle(admin, order_a["id"]))["lines"][0]["queueKey"] == "mall"
    order_b = await order(b, (item, 1))
    await wechat_pays(b.http, order_b["outTradeNo"])
    await server.services.jobs.drain()
    await settings(admin, mallQueue=False)
    settled_b = await complete_and_settle(admin, order_b["id"])
    assert settled_b["lines"][0]["queueKey"] == f"product:{item}"
    assert (await only_entry(a))["rewardedFen"] == 0
    assert (await only_entry(b))["queueKey"] == f"product:{item}"


async def test_an_entitlement_that_rounds_to_zero_joins_completed(anonymous, admin):
    """§4: an entry whose entitlement rounds to 0 joins already COMPLETED."""
    tiny = await product(admin, "一分", 1, rebate={"ratioBp": 9999})  # 1×99.99% = 0.9999 → 0
    item = await product(admin, "礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await bought(a, tiny)
    entry_a = await only_entry(a)
    assert (entry_a["status"], entry_a["entitlementFen"], entry_a["ratioBp"]) == (
        "COMPLETED",
        0,
        9999,
    )
    assert (entry_a["rewardedFen"], entry_a["remainingFen"], entry_a["position"]) == (0, 0, None)
    assert entry_a["number"] == 1
    # B's 650 finds nobody waiting: A's entry takes nothing, B is first in line.
    await bought(b, item)
    assert (await only_entry(a))["rewardedFen"] == 0
    entry_b = await only_entry(b)
    assert (entry_b["number"], entry_b["position"], entry_b["amountAheadFen"]) == (2, 1, 0)


async def test_with_the_plugin_off_an_order_settles_but_touches_no_queue(anonymous, admin):
    """§4: with the plugin switch off the settlement event happens (settled) but touches no queue,
    and it is not replayed when the switch comes back on."""
    item = await product(admin, "礼盒", 1000)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await bought(a, item)
    await settings(admin, enabled=False)
    settled_b = await bought(b, item)
    assert (settled_b["status"], settled_b["settled"]) == ("PAID", True)
    assert await my_entries(b) == []
    assert (await only_entry(a))["rewardedFen"] == 0
    await settings(admin, enabled=True)
    # C's 650 reaches A; B's order never contributes afterwards.
    await bought(c, item)
    assert (await only_entry(a))["rewardedFen"] == 650
    assert await my_entries(b) == []
    assert (await wallet(a))["balanceFen"] == 650


async def test_completing_a_settled_order_does_not_settle_it_again(server, anonymous, admin):
    """§4: each settlement event happens at most once per order (settleOn PAID, then completed)."""
    item = await product(admin, "礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await bought(a, item)
    order_b = await bought(b, item)
    assert (await only_entry(a))["rewardedFen"] == 650
    await admin(COMPLETE, id=order_b["id"])
    await server.services.jobs.drain()
    assert (await only_entry(a))["rewardedFen"] == 650
    assert len(await my_entries(b)) == 1


async def test_a_pending_order_cannot_be_completed_or_refunded(server, anonymous, admin):
    """§4: completing or refunding a PENDING_PAYMENT order is a CONFLICT and changes nothing."""
    item = await product(admin, "礼盒", 1000)
    a = await anonymous.login("a")
    created = await order(a, (item, 1))
    assert (await admin.error(COMPLETE, id=created["id"])).code == "CONFLICT"
    assert (await a.error(CONFIRM, id=created["id"])).code == "CONFLICT"
    assert (await admin.error(REFUND, id=created["id"])).code == "CONFLICT"
    await server.services.jobs.drain()
    after = await order_of(a, created["id"])
    assert (after["status"], after["settled"]) == ("PENDING_PAYMENT", False)
    assert await my_entries(a) == []
    # Nothing changed: it still pays and settles normally.
    assert (await pay_and_settle(a, created))["status"] == "PAID"
    assert (await only_entry(a))["entitlementFen"] == 1300


async def test_completing_or_refunding_twice_is_a_conflict(server, anonymous, admin):
    """§4: completing a completed order, or refunding a refunded one, is a CONFLICT."""
    item = await product(admin, "礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    order_a = await bought(a, item)
    await admin(COMPLETE, id=order_a["id"])
    completed = await order_of(admin, order_a["id"])
    assert (await admin.error(COMPLETE, id=order_a["id"])).code == "CONFLICT"
    assert (await a.error(CONFIRM, id=order_a["id"])).code == "CONFLICT"
    assert await order_of(admin, order_a["id"]) == completed

    order_b = await bought(b, item)  # 650 to A
    assert (await admin(REFUND, id=order_b["id"]))["refundOrder"]["status"] == "REFUNDED"
    refunded = await order_of(admin, order_b["id"])
    assert (await admin.error(REFUND, id=order_b["id"])).code == "CONFLICT"
    assert (await admin.error(COMPLETE, id=order_b["id"])).code == "CONFLICT"
    await server.services.jobs.drain()
    assert await order_of(admin, order_b["id"]) == refunded
    assert (await only_entry(b))["status"] == "CANCELLED"
    assert (await only_entry(a))["rewardedFen"] == 650
