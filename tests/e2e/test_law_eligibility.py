"""SPEC §6 (eligibility for an entry) and the §4 rule that an ineligible line still contributes.

Every amount is worked out by hand. Unless a test says otherwise the plugin runs the article's
ratios: extraction 65% (6500 bp) and reward 130% (13000 bp), so a line paid 100 fen contributes
apply(100, 6500) = 65 to the entries ahead and, when eligible, joins with an entitlement of
apply(100, 13000) = 130. Payment times are Beijing times (the operator's zone, Asia/Shanghai),
given to the fake WeChat as `timeEnd`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.client import (
    ENTRY_FIELDS,
    ORDER_FIELDS,
    Api,
    buy,
    create_product,
    my_entries,
    order_of,
    wait_settled,
    wechat_pays,
)

DAY = "20261125"
NEXT_DAY = "20261126"

SETTINGS = """mutation($input: RebateSettingsInput!) { updateRebateSettings(input: $input) {
  extractionRatioBp defaultRewardRatioBp deductionMode mallQueue allStoresQueue allCashiersQueue
  pointsExchangeRatioBp randomReturn { enabled cashSeats pointsSeats } } }"""
PRODUCT = """mutation($input: ProductInput!) { upsertProduct(input: $input) {
  id storeId rebate { enabled rewardWindows { start end } limitPerUserPerDay limitPerUserTotal
  randomReturn { enabled cashSeats pointsSeats } } } }"""
STORE = """mutation($input: StoreInput!) { upsertStore(input: $input) {
  id goodsRebate { enabled rewardWindows { start end } limitPerUserPerDay limitPerUserTotal
  randomReturn { enabled cashSeats pointsSeats } }
  cashierRebate { enabled rewardWindows { start end } limitPerUserPerDay limitPerUserTotal
  randomReturn { enabled cashSeats pointsSeats } } } }"""
CASHIER_ORDER = (
    "mutation($input: CashierOrderInput!) { createCashierOrder(input: $input) { "
    + ORDER_FIELDS
    + " } }"
)
CREATE_ORDER = (
    "mutation($input: CreateOrderInput!) { createOrder(input: $input) { " + ORDER_FIELDS + " } }"
)
EXCHANGE = """mutation($id: ID!, $target: ExchangeTarget!) {
  exchangeEntry(entryId: $id, target: $target) { status remainingFen } }"""
REFUND = "mutation($id: ID!) { refundOrder(orderId: $id) { status } }"
WALLET = "{ wallet { balanceFen points loveValue loveValueFrozen } }"


# ----------------------------------------------------------------------------------------------
# Helpers: all through the API and the fake WeChat.


async def settings(admin: Api, **changes: Any) -> dict[str, Any]:
    """The article's ratios, plus `changes`."""
    base = {"extractionRatioBp": 6500, "defaultRewardRatioBp": 13000, "settleOn": "PAID"}
    return (await admin(SETTINGS, input={**base, **changes}))["updateRebateSettings"]


def at(hhmm: str, day: str = DAY) -> str:
    """`timeEnd` for a payment at hh:mm Beijing time on `day`."""
    return f"{day}{hhmm.replace(':', '')}00"


async def pay_at(consumer: Api, order: dict[str, Any], when: str) -> dict[str, Any]:
    """WeChat reports the payment as made at `when` (Beijing time); wait for the settlement."""
    reply = await wechat_pays(consumer.http, order["outTradeNo"], timeEnd=when)
    assert "SUCCESS" in reply["reply"], reply
    return await wait_settled(consumer, order["id"])


async def make_store(
    admin: Api,
    name: str,
    goods: dict[str, Any] | None = None,
    cashier: dict[str, Any] | None = None,
) -> str:
    """A store whose goods and cashier rules are enabled, plus the given settings."""
    data = await admin(
        STORE,
        input={
            "name": name,
            "goodsRebate": {"enabled": True, **(goods or {})},
            "cashierRebate": {"enabled": True, **(cashier or {})},
        },
    )
    return data["upsertStore"]["id"]


async def store_product(admin: Api, store_id: str, name: str, price_fen: int, **rebate: Any) -> str:
    data = await admin(
        PRODUCT,
        input={
            "name": name,
            "priceFen": price_fen,
            "storeId": store_id,
            "rebate": {"enabled": True, **rebate},
        },
    )
    return data["upsertProduct"]["id"]


async def at_cashier(consumer: Api, store_id: str, amount_fen: int) -> dict[str, Any]:
    data = await consumer(CASHIER_ORDER, input={"storeId": store_id, "amountFen": amount_fen})
    return data["createCashierOrder"]


async def entry_of(admin: Api, entry_id: str) -> dict[str, Any]:
    return (await admin(f"query($id: ID!) {{ entry(id: $id) {{ {ENTRY_FIELDS} }} }}", id=entry_id))[
        "entry"
    ]


async def wallet(consumer: Api) -> dict[str, Any]:
    return (await consumer(WALLET))["wallet"]


def money(entry: dict[str, Any]) -> tuple[str, int, int, int]:
    """(status, entitlement, rewarded, remaining) of an entry."""
    return (
        entry["status"],
        entry["entitlementFen"],
        entry["rewardedFen"],
        entry["remainingFen"],
    )


async def only_entry(consumer: Api) -> dict[str, Any]:
    [entry] = await my_entries(consumer)
    return entry


async def assert_no_entry_but_settled(
    consumer: Api, order: dict[str, Any], queue_key: str, paid_fen: int = 100
) -> None:
    """The order settled and its line is in `queue_key` (it contributed), but no entry joined."""
    assert order["settled"] is True
    assert order["status"] in ("PAID", "COMPLETED")
    [line] = order["lines"]
    assert line["queueKey"] == queue_key
    assert line["paidFen"] == paid_fen
    assert [e for e in await my_entries(consumer) if e["orderId"] == order["id"]] == []


# ----------------------------------------------------------------------------------------------
# Reward time windows (奖励时间段限制)


async def test_payment_outside_the_window_earns_no_entry_but_still_contributes(anonymous, admin):
    """§6 windows + §4.1: outside every window → no entry; the line's contribution is still paid."""
    await settings(admin)
    product = await create_product(
        admin, "早市礼盒", 100, rewardWindows=[{"start": "10:00", "end": "12:00"}]
    )
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    order_a = await pay_at(a, await buy(a, product), at("11:00"))
    assert order_a["lines"][0]["queueKey"] == "mall"
    entry_a = await only_entry(a)
    # 11:00 is inside 10:00–12:00: entitlement 100 × 130% = 130; A's own 65 is returned.
    assert money(entry_a) == ("WAITING", 130, 0, 130)
    assert entry_a["position"] == 1

    # B pays at 14:00, outside the window: no entry, but 100 × 65% = 65 still goes to A.
    order_b = await pay_at(b, await buy(b, product), at("14:00"))
    await assert_no_entry_but_settled(b, order_b, "mall")
    assert await my_entries(b) == []
    entry_a = await only_entry(a)
    assert money(entry_a) == ("WAITING", 130, 65, 65)
    assert entry_a["process"]["items"] == [
        {"fromOrderId": order_b["id"], "amountFen": 65, "payerNickname": "B"}
    ]

    # C pays at 10:30, inside: C's 65 completes A (65 + 65 = 130), then C joins.
    await pay_at(c, await buy(c, product), at("10:30"))
    assert money(await only_entry(a)) == ("COMPLETED", 130, 130, 0)
    entry_c = await only_entry(c)
    assert money(entry_c) == ("WAITING", 130, 0, 130)
    assert entry_c["position"] == 1
    assert entry_c["amountAheadFen"] == 0


async def test_windows_are_read_in_beijing_time(anonymous, admin):
    """§2/§6: the payment time is compared in the operator's zone Asia/Shanghai, not UTC."""
    await settings(admin)
    product = await create_product(
        admin, "晨光礼盒", 100, rewardWindows=[{"start": "08:00", "end": "09:00"}]
    )
    a, b = await anonymous.login("a"), await anonymous.login("b")

    # 08:30 in Beijing (00:30 UTC): inside 08:00–09:00 → entry of 130.
    await pay_at(a, await buy(a, product), at("08:30"))
    assert money(await only_entry(a)) == ("WAITING", 130, 0, 130)

    # 16:30 in Beijing is 08:30 UTC: outside in Beijing → no entry; its 65 goes to A.
    order_b = await pay_at(b, await buy(b, product), at("16:30"))
    await assert_no_entry_but_settled(b, order_b, "mall")
    assert money(await only_entry(a)) == ("WAITING", 130, 65, 65)


async def test_any_of_several_windows_admits_the_payment(anonymous, admin):
    """§6: with several windows the payment time must fall inside one of them."""
    await settings(admin)
    product = await create_product(
        admin,
        "双时段礼盒",
        100,
        rewardWindows=[{"start": "09:00", "end": "10:00"}, {"start": "14:00", "end": "15:00"}],
    )
    a, b, c, d = [await anonymous.login(code) for code in ("a", "b", "c", "d")]

    await pay_at(a, await buy(a, product), at("09:30"))  # first window: entry 130
    order_b = await pay_at(b, await buy(b, product), at("12:00"))  # between: none, 65 → A
    await assert_no_entry_but_settled(b, order_b, "mall")
    assert money(await only_entry(a)) == ("WAITING", 130, 65, 65)

    await pay_at(c, await buy(c, product), at("14:30"))  # second window: 65 completes A, C joins
    assert money(await only_entry(a)) == ("COMPLETED", 130, 130, 0)
    assert money(await only_entry(c)) == ("WAITING", 130, 0, 130)

    order_d = await pay_at(d, await buy(d, product), at("15:30"))  # after both: none, 65 → C
    await assert_no_entry_but_settled(d, order_d, "mall")
    assert money(await only_entry(c)) == ("WAITING", 130, 65, 65)


async def test_a_window_may_cross_midnight(anonymous, admin):
    """§6: a window 22:00–02:00 holds 23:30 and 01:00 (the next day), not 12:00 nor 02:30."""
    await settings(admin)
    product = await create_product(
        admin, "夜宵礼盒", 100, rewardWindows=[{"start": "22:00", "end": "02:00"}]
    )
    a, b, c, d = [await anonymous.login(code) for code in ("a", "b", "c", "d")]

    await pay_at(a, await buy(a, product), at("23:30"))
    assert money(await only_entry(a)) == ("WAITING", 130, 0, 130)

    # 01:00 the next morning: inside. B's 65 goes to A first, then B joins.
    await pay_at(b, await buy(b, product), at("01:00", NEXT_DAY))
    assert money(await only_entry(a)) == ("WAITING", 130, 65, 65)
    entry_b = await only_entry(b)
    assert money(entry_b) == ("WAITING", 130, 0, 130)
    assert entry_b["position"] == 2
    assert entry_b["amountAheadFen"] == 65

    # 12:00: outside. No entry for C; C's 65 completes A.
    order_c = await pay_at(c, await buy(c, product), at("12:00", NEXT_DAY))
    await assert_no_entry_but_settled(c, order_c, "mall")
    assert money(await only_entry(a)) == ("COMPLETED", 130, 130, 0)

    # 02:30: outside too. D's 65 goes to B.
    order_d = await pay_at(d, await buy(d, product), at("02:30", NEXT_DAY))
    await assert_no_entry_but_settled(d, order_d, "mall")
    assert money(await only_entry(b)) == ("WAITING", 130, 65, 65)


async def test_store_product_windows_win_over_the_store_goods_windows(anonymous, admin):
    """§6: windows come from the most specific scope that sets them: store product → store goods."""
    await settings(admin, allStoresQueue=False)
    store = await make_store(
        admin, "一号店", goods={"rewardWindows": [{"start": "09:00", "end": "10:00"}]}
    )
    own = await store_product(
        admin, store, "晚场套餐", 100, rewardWindows=[{"start": "20:00", "end": "21:00"}]
    )
    plain = await store_product(admin, store, "普通套餐", 100)  # no windows: the store's apply
    queue = f"store:{store}"
    u1, u2, u3, u4 = [await anonymous.login(code) for code in ("u1", "u2", "u3", "u4")]

    # The product's 20:00–21:00 admits 20:30 though the store's 09:00–10:00 would not.
    order1 = await pay_at(u1, await buy(u1, own), at("20:30"))
    assert order1["lines"][0]["queueKey"] == queue
    entry1 = await only_entry(u1)
    assert money(entry1) == ("WAITING", 130, 0, 130)
    assert entry1["queueKey"] == queue

    # ... and refuses 09:30 though the store's window would admit it: 65 → entry 1.
    order2 = await pay_at(u2, await buy(u2, own), at("09:30"))
    await assert_no_entry_but_settled(u2, order2, queue)
    assert money(await only_entry(u1)) == ("WAITING", 130, 65, 65)

    # A product without windows takes the store's: 09:30 inside; 65 completes entry 1.
    await pay_at(u3, await buy(u3, plain), at("09:30"))
    assert money(await only_entry(u1)) == ("COMPLETED", 130, 130, 0)
    assert money(await only_entry(u3)) == ("WAITING", 130, 0, 130)

    # ... and 20:30 outside the store's window: no entry; 65 → entry 3.
    order4 = await pay_at(u4, await buy(u4, plain), at("20:30"))
    await assert_no_entry_but_settled(u4, order4, queue)
    assert money(await only_entry(u3)) == ("WAITING", 130, 65, 65)


async def test_cashier_windows_apply_to_its_payments_and_only_to_them(anonymous, admin):
    """§6: a cashier's windows decide for payments at that cashier; the store's goods windows do
    not, and the cashier's do not bind the store's goods."""
    await settings(admin, allStoresQueue=False, allCashiersQueue=False)
    store = await make_store(
        admin,
        "一号店",
        goods={"rewardWindows": [{"start": "17:00", "end": "19:00"}]},
        cashier={"rewardWindows": [{"start": "11:00", "end": "13:00"}]},
    )
    goods = await store_product(admin, store, "套餐", 100)
    queue = f"cashier:{store}"
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    # 12:00: inside the cashier's 11:00–13:00 (outside the goods' 17:00–19:00) → entry 130.
    order_a = await pay_at(a, await at_cashier(a, store, 100), at("12:00"))
    assert order_a["status"] == "COMPLETED"  # a cashier payment is complete when paid
    entry_a = await only_entry(a)
    assert entry_a["queueKey"] == queue
    assert money(entry_a) == ("WAITING", 130, 0, 130)

    # 18:00: outside the cashier's window (inside the goods') → no entry; 65 → A.
    order_b = await pay_at(b, await at_cashier(b, store, 100), at("18:00"))
    await assert_no_entry_but_settled(b, order_b, queue)
    assert money(await only_entry(a)) == ("WAITING", 130, 65, 65)

    # The store's goods at 18:00 follow the goods' window: entry in the store's goods queue.
    await pay_at(c, await buy(c, goods), at("18:00"))
    entry_c = await only_entry(c)
    assert entry_c["queueKey"] == f"store:{store}"
    assert money(entry_c) == ("WAITING", 130, 0, 130)
    assert money(await only_entry(a)) == ("WAITING", 130, 65, 65)


async def test_windows_use_the_payment_time_when_settling_on_completion(anonymous, admin):
    """§4/§6: with settleOn COMPLETED the window is still compared with the payment time."""
    await settings(admin, settleOn="COMPLETED")
    product = await create_product(
        admin, "礼盒", 100, rewardWindows=[{"start": "10:00", "end": "12:00"}]
    )
    a, b = await anonymous.login("a"), await anonymous.login("b")
    complete = "mutation($id: ID!) { completeOrder(orderId: $id) { status } }"

    # Paid at 11:00, completed whenever the test runs: the entry is earned (130).
    order_a = await buy(a, product)
    reply = await wechat_pays(a.http, order_a["outTradeNo"], timeEnd=at("11:00"))
    assert "SUCCESS" in reply["reply"]
    assert (await admin(complete, id=order_a["id"]))["completeOrder"]["status"] == "COMPLETED"
    await wait_settled(a, order_a["id"])
    assert money(await only_entry(a)) == ("WAITING", 130, 0, 130)

    # Paid at 14:00, completed now like A (at the same time of day): no entry; 65 → A.
    order_b = await buy(b, product)
    reply = await wechat_pays(b.http, order_b["outTradeNo"], timeEnd=at("14:00"))
    assert "SUCCESS" in reply["reply"]
    assert (await admin(complete, id=order_b["id"]))["completeOrder"]["status"] == "COMPLETED"
    settled_b = await wait_settled(b, order_b["id"])
    await assert_no_entry_but_settled(b, settled_b, "mall")
    assert money(await only_entry(a)) == ("WAITING", 130, 65, 65)


async def _two_sources(admin: Api, queue: str, restricted: dict[str, Any]):
    """Two kinds of line in one shared queue: one whose own scope sets `restricted`, one not.

    Returns (buy_restricted, buy_free), each `async (consumer) -> order` for a 100-fen line.
    """
    if queue == "mall":
        await settings(admin, mallQueue=True)
        limited = await create_product(admin, "限定礼盒", 100, **restricted)
        free = await create_product(admin, "普通礼盒", 100)

        async def buy_limited(consumer: Api) -> dict[str, Any]:
            return await buy(consumer, limited)

        async def buy_free(consumer: Api) -> dict[str, Any]:
            return await buy(consumer, free)

    elif queue == "stores":
        await settings(admin, allStoresQueue=True)
        store_r = await make_store(admin, "限定店", goods=restricted)
        store_f = await make_store(admin, "普通店")
        limited = await store_product(admin, store_r, "限定套餐", 100)
        free = await store_product(admin, store_f, "普通套餐", 100)

        async def buy_limited(consumer: Api) -> dict[str, Any]:
            return await buy(consumer, limited)

        async def buy_free(consumer: Api) -> dict[str, Any]:
            return await buy(consumer, free)

    else:
        await settings(admin, allCashiersQueue=True)
        store_r = await make_store(admin, "限定店", cashier=restricted)
        store_f = await make_store(admin, "普通店")

        async def buy_limited(consumer: Api) -> dict[str, Any]:
            return await at_cashier(consumer, store_r, 100)

        async def buy_free(consumer: Api) -> dict[str, Any]:
            return await at_cashier(consumer, store_f, 100)

    return buy_limited, buy_free


@pytest.mark.parametrize("queue", ["mall", "stores", "cashiers"])
async def test_windows_of_one_scope_do_not_bind_another_in_a_shared_queue(anonymous, admin, queue):
    """§6: in the shared mall / stores / cashiers queue each line keeps its own scope's windows."""
    buy_limited, buy_free = await _two_sources(
        admin, queue, {"rewardWindows": [{"start": "09:00", "end": "10:00"}]}
    )
    f, r1, r2 = [await anonymous.login(code) for code in ("f", "r1", "r2")]

    # 20:30, a line whose scope sets no window: entry 130 in the shared queue.
    await pay_at(f, await buy_free(f), at("20:30"))
    entry_f = await only_entry(f)
    assert entry_f["queueKey"] == queue
    assert money(entry_f) == ("WAITING", 130, 0, 130)

    # 20:30, a line of the restricted scope: outside 09:00–10:00, no entry; 65 → F.
    order_r1 = await pay_at(r1, await buy_limited(r1), at("20:30"))
    await assert_no_entry_but_settled(r1, order_r1, queue)
    assert money(await only_entry(f)) == ("WAITING", 130, 65, 65)

    # 09:30, the restricted scope again: inside, so it joins after its 65 completes F.
    await pay_at(r2, await buy_limited(r2), at("09:30"))
    assert money(await only_entry(f)) == ("COMPLETED", 130, 130, 0)
    entry_r2 = await only_entry(r2)
    assert entry_r2["queueKey"] == queue
    assert money(entry_r2) == ("WAITING", 130, 0, 130)


# ----------------------------------------------------------------------------------------------
# Limits (奖励限制)


async def test_limit_per_user_total_on_a_product(anonymous, admin):
    """§6: limitPerUserTotal caps one user's entries on the product; other users are not capped."""
    await settings(admin)
    product = await create_product(admin, "限购礼盒", 100, limitPerUserTotal=2)
    u, v = await anonymous.login("u"), await anonymous.login("v")

    first = await pay_at(u, await buy(u, product), at("10:00"))  # entry 1 (130), its 65 returned
    second = await pay_at(u, await buy(u, product), at("10:05"))  # 65 → entry 1, entry 2 joins
    third = await pay_at(u, await buy(u, product), at("10:10"))  # over the limit: 65 → entry 1
    await assert_no_entry_but_settled(u, third, "mall")
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {first["id"], second["id"]}
    assert money(entries[first["id"]]) == ("COMPLETED", 130, 130, 0)
    assert money(entries[second["id"]]) == ("WAITING", 130, 0, 130)

    # The limit is per user: V still earns an entry, after V's 65 goes to U's entry 2.
    await pay_at(v, await buy(v, product), at("10:15"))
    assert money(await only_entry(v)) == ("WAITING", 130, 0, 130)
    assert money(await entry_of(admin, entries[second["id"]]["id"])) == ("WAITING", 130, 65, 65)


async def test_a_limit_counts_the_scope_not_the_queue(anonymous, admin):
    """§6: a product's limit counts the user's entries on that product in whatever queue."""
    await settings(admin, mallQueue=True)
    product = await create_product(admin, "限购礼盒", 100, limitPerUserTotal=1)
    u = await anonymous.login("u")
    first = await pay_at(u, await buy(u, product), at("10:00"))  # entry in mall; 65 returned
    assert first["lines"][0]["queueKey"] == "mall"

    # The product now has its own queue; the entry in `mall` still counts towards its limit.
    await settings(admin, mallQueue=False)
    second = await pay_at(u, await buy(u, product), at("10:05"))
    await assert_no_entry_but_settled(u, second, f"product:{product}")
    entry = await only_entry(u)
    assert entry["orderId"] == first["id"]
    assert money(entry) == ("WAITING", 130, 0, 130)  # the 65 went to the new (empty) queue


async def test_per_day_limit_uses_the_payment_day_when_settling_on_completion(anonymous, admin):
    """§4/§6: with settleOn COMPLETED the "day" of a per-day limit is the payment's day."""
    await settings(admin, settleOn="COMPLETED")
    product = await create_product(admin, "每日礼盒", 100, limitPerUserPerDay=1)
    u = await anonymous.login("u")
    complete = "mutation($id: ID!) { completeOrder(orderId: $id) { status } }"

    # Paid on two different days, both completed now (the same day): two entries.
    first, second = await buy(u, product), await buy(u, product)
    for order, when in ((first, at("10:00")), (second, at("10:00", NEXT_DAY))):
        reply = await wechat_pays(u.http, order["outTradeNo"], timeEnd=when)
        assert "SUCCESS" in reply["reply"]
    for order in (first, second):
        assert (await admin(complete, id=order["id"]))["completeOrder"]["status"] == "COMPLETED"
        await wait_settled(u, order["id"])
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {first["id"], second["id"]}
    # The first waited with 130 and got the second's 65; the second joined behind it.
    assert money(entries[first["id"]]) == ("WAITING", 130, 65, 65)
    assert money(entries[second["id"]]) == ("WAITING", 130, 0, 130)


async def test_limit_counts_entries_earlier_in_the_same_order(anonymous, admin):
    """§6 + §4.3: an order's lines join in order; a later line of it is over the limit."""
    await settings(admin)
    product = await create_product(admin, "限购礼盒", 100, limitPerUserTotal=1)
    u = await anonymous.login("u")
    order = (await u(CREATE_ORDER, input={"lines": [{"productId": product, "quantity": 1}] * 2}))[
        "createOrder"
    ]
    settled = await pay_at(u, order, at("10:00"))
    assert [line["queueKey"] for line in settled["lines"]] == ["mall", "mall"]
    # Both lines contribute 65 (returned: nobody waits); only the first line joins.
    entry = await only_entry(u)
    assert entry["orderLineId"] == settled["lines"][0]["id"]
    assert money(entry) == ("WAITING", 130, 0, 130)


async def test_limit_per_user_per_day_uses_the_beijing_payment_day(anonymous, admin):
    """§6: the "day" of limitPerUserPerDay is the payment's day in Asia/Shanghai."""
    await settings(admin)
    product = await create_product(admin, "每日礼盒", 100, limitPerUserPerDay=1)
    u = await anonymous.login("u")

    # 25th 07:30 Beijing (24th 23:30 UTC): the first of the 25th → entry 130, its 65 returned.
    first = await pay_at(u, await buy(u, product), at("07:30"))
    # 25th 08:30 Beijing (25th 00:30 UTC): the same Beijing day → none; 65 → first entry.
    second = await pay_at(u, await buy(u, product), at("08:30"))
    await assert_no_entry_but_settled(u, second, "mall")
    # 25th 23:30 Beijing: still the 25th → none (the first entry, completed now, still counts).
    third = await pay_at(u, await buy(u, product), at("23:30"))
    await assert_no_entry_but_settled(u, third, "mall")
    # 26th 00:30 Beijing (25th 16:30 UTC): a new Beijing day → entry; its 65 is returned.
    fourth = await pay_at(u, await buy(u, product), at("00:30", NEXT_DAY))
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {first["id"], fourth["id"]}
    assert money(entries[first["id"]]) == ("COMPLETED", 130, 130, 0)
    assert money(entries[fourth["id"]]) == ("WAITING", 130, 0, 130)
    assert entries[fourth["id"]]["position"] == 1


async def test_cancelled_entries_do_not_count_towards_a_limit(server, anonymous, admin):
    """§6: an entry cancelled by a refund no longer counts towards limitPerUserTotal."""
    await settings(admin)
    product = await create_product(admin, "限购礼盒", 100, limitPerUserTotal=1)
    u = await anonymous.login("u")

    first = await pay_at(u, await buy(u, product), at("10:00"))  # entry 130, 65 returned
    assert (await admin(REFUND, id=first["id"]))["refundOrder"]["status"] == "REFUNDED"
    await server.services.jobs.drain()
    [cancelled] = await my_entries(u)
    assert money(cancelled) == ("CANCELLED", 130, 0, 0)
    # Refunding it again is a conflict and changes nothing.
    assert (await admin.error(REFUND, id=first["id"])).code == "CONFLICT"
    assert (await order_of(u, first["id"]))["status"] == "REFUNDED"

    # The cancelled entry does not count: a new entry joins (its 65 finds nobody waiting).
    second = await pay_at(u, await buy(u, product), at("10:05"))
    # That one counts: the next order is over the limit; its 65 goes to the second entry.
    third = await pay_at(u, await buy(u, product), at("10:10"))
    await assert_no_entry_but_settled(u, third, "mall")
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {first["id"], second["id"]}
    assert money(entries[first["id"]]) == ("CANCELLED", 130, 0, 0)
    assert money(entries[second["id"]]) == ("WAITING", 130, 65, 65)


async def test_store_product_limit_wins_over_the_store_goods_limit(anonymous, admin):
    """§6: a limit comes from the most specific scope that sets it: store product → store goods."""
    await settings(admin, allStoresQueue=False)
    store = await make_store(admin, "一号店", goods={"limitPerUserTotal": 1})
    own = await store_product(admin, store, "自有限额套餐", 100, limitPerUserTotal=3)
    plain = await store_product(admin, store, "普通套餐", 100)  # no limit: the store's 1 applies
    u = await anonymous.login("u")

    # The product's own limit of 3 governs it, not the store's 1: two entries.
    first = await pay_at(u, await buy(u, own), at("10:00"))  # entry 130, 65 returned
    second = await pay_at(u, await buy(u, own), at("10:05"))  # 65 → first, entry joins
    # A product without a limit takes the store's 1, counting all of U's store-goods entries (2).
    third = await pay_at(u, await buy(u, plain), at("10:10"))  # none; 65 completes the first
    await assert_no_entry_but_settled(u, third, f"store:{store}")
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {first["id"], second["id"]}
    assert money(entries[first["id"]]) == ("COMPLETED", 130, 130, 0)
    assert money(entries[second["id"]]) == ("WAITING", 130, 0, 130)


async def test_per_day_and_total_limits_each_come_from_their_own_scope(anonymous, admin):
    """§6: each limit is taken from the most specific scope that sets it, independently."""
    await settings(admin, allStoresQueue=False)
    store = await make_store(
        admin, "一号店", goods={"limitPerUserPerDay": 1, "limitPerUserTotal": 3}
    )
    # The product sets only a per-day limit: per day 2 (its own), in total 3 (the store's).
    product = await store_product(admin, store, "套餐", 100, limitPerUserPerDay=2)
    u = await anonymous.login("u")
    queue = f"store:{store}"

    # Day 1: two entries, the product's per-day 2 winning over the store's per-day 1.
    first = await pay_at(u, await buy(u, product), at("10:00"))  # entry 130, 65 returned
    second = await pay_at(u, await buy(u, product), at("10:05"))  # 65 → first; joins
    # A third on day 1 is over the per-day 2 (the total 3 would allow it): 65 completes first.
    third = await pay_at(u, await buy(u, product), at("10:10"))
    await assert_no_entry_but_settled(u, third, queue)
    # Day 2: a new day, and the store's total allows a third entry; 65 → second.
    fourth = await pay_at(u, await buy(u, product), at("10:00", NEXT_DAY))
    # Then the total of 3 is reached (per-day would allow a second): 65 completes second.
    fifth = await pay_at(u, await buy(u, product), at("10:05", NEXT_DAY))
    await assert_no_entry_but_settled(u, fifth, queue)
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {first["id"], second["id"], fourth["id"]}
    assert money(entries[first["id"]]) == ("COMPLETED", 130, 130, 0)
    assert money(entries[second["id"]]) == ("COMPLETED", 130, 130, 0)
    assert money(entries[fourth["id"]]) == ("WAITING", 130, 0, 130)
    assert entries[fourth["id"]]["position"] == 1


async def test_store_goods_limit_counts_only_that_store_goods(anonymous, admin):
    """§6: a store's goods limit counts the entries earned on its goods, not its cashier's nor
    another store's."""
    await settings(admin, allStoresQueue=False, allCashiersQueue=False)
    store = await make_store(admin, "一号店", goods={"limitPerUserTotal": 1})
    other = await make_store(admin, "二号店")
    first_goods = await store_product(admin, store, "套餐甲", 100)
    second_goods = await store_product(admin, store, "套餐乙", 100)
    other_goods = await store_product(admin, other, "套餐丙", 100)
    u = await anonymous.login("u")

    # Three entries in three queues; each queue's first contribution of 65 is returned.
    await pay_at(u, await at_cashier(u, store, 100), at("10:00"))
    await pay_at(u, await buy(u, other_goods), at("10:05"))
    first = await pay_at(u, await buy(u, first_goods), at("10:10"))
    # Neither the cashier's entry nor the other store's counted: the store's goods entry joined.
    assert sorted(e["queueKey"] for e in await my_entries(u)) == sorted(
        [f"cashier:{store}", f"store:{other}", f"store:{store}"]
    )
    # Another of this store's goods is over its limit of 1: no entry; 65 → the goods entry.
    second = await pay_at(u, await buy(u, second_goods), at("10:15"))
    await assert_no_entry_but_settled(u, second, f"store:{store}")
    entries = {e["queueKey"]: e for e in await my_entries(u)}
    assert len(entries) == 3
    assert entries[f"store:{store}"]["orderId"] == first["id"]
    assert money(entries[f"store:{store}"]) == ("WAITING", 130, 65, 65)
    assert money(entries[f"cashier:{store}"]) == ("WAITING", 130, 0, 130)
    assert money(entries[f"store:{other}"]) == ("WAITING", 130, 0, 130)


async def test_cashier_limit_per_day(anonymous, admin):
    """§6: a cashier's limitPerUserPerDay counts that cashier's entries of the payment day."""
    await settings(admin, allCashiersQueue=False)
    store = await make_store(admin, "一号店", cashier={"limitPerUserPerDay": 1})
    queue = f"cashier:{store}"
    u, v = await anonymous.login("u"), await anonymous.login("v")

    first = await pay_at(u, await at_cashier(u, store, 100), at("09:00"))  # entry, 65 returned
    # Another user is not limited by U's entries: 65 → U, V joins.
    await pay_at(v, await at_cashier(v, store, 100), at("09:30"))
    # U again the same day: none; 65 completes U's entry.
    again = await pay_at(u, await at_cashier(u, store, 100), at("20:00"))
    await assert_no_entry_but_settled(u, again, queue)
    # U the next day: a new day → entry; its 65 → V.
    next_day = await pay_at(u, await at_cashier(u, store, 100), at("09:00", NEXT_DAY))
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {first["id"], next_day["id"]}
    assert money(entries[first["id"]]) == ("COMPLETED", 130, 130, 0)
    assert money(entries[next_day["id"]]) == ("WAITING", 130, 0, 130)
    assert money(await only_entry(v)) == ("WAITING", 130, 65, 65)


@pytest.mark.parametrize("queue", ["mall", "stores", "cashiers"])
async def test_limit_of_one_scope_ignores_entries_of_another_in_a_shared_queue(
    anonymous, admin, queue
):
    """§6: in a shared queue a scope's limit counts only the entries earned in that scope."""
    buy_limited, buy_free = await _two_sources(admin, queue, {"limitPerUserTotal": 1})
    u = await anonymous.login("u")

    e1 = await pay_at(u, await buy_free(u), at("10:00"))  # entry 1 (130); 65 returned
    e2 = await pay_at(u, await buy_free(u), at("10:05"))  # 65 → entry 1; entry 2
    # U's two entries in the shared queue belong to another scope: the limited one still admits.
    e3 = await pay_at(u, await buy_limited(u), at("10:10"))  # 65 completes entry 1; entry 3
    over = await pay_at(u, await buy_limited(u), at("10:15"))  # over the limit: 65 → entry 2
    await assert_no_entry_but_settled(u, over, queue)
    entries = {e["orderId"]: e for e in await my_entries(u)}
    assert set(entries) == {e1["id"], e2["id"], e3["id"]}
    assert {e["queueKey"] for e in entries.values()} == {queue}
    assert money(entries[e1["id"]]) == ("COMPLETED", 130, 130, 0)
    assert money(entries[e2["id"]]) == ("WAITING", 130, 65, 65)
    assert money(entries[e3["id"]]) == ("WAITING", 130, 0, 130)


# ----------------------------------------------------------------------------------------------
# Deduction orders (抵扣订单开关)


async def _deduction_setup(anonymous, admin, target: str):
    """U earns 130 points or love value by exchanging an entry; W then waits with 130 in mall."""
    await settings(
        admin, pointsExchangeRatioBp=10000, loveValueExchangeRatioBp=10000, loveValueFrozen=False
    )
    product = await create_product(admin, "礼盒", 100)
    u, w = await anonymous.login("u"), await anonymous.login("w")
    await pay_at(u, await buy(u, product), at("10:00"))
    entry_u = await only_entry(u)
    exchanged = (await u(EXCHANGE, id=entry_u["id"], target=target))["exchangeEntry"]
    assert exchanged == {"status": "EXCHANGED", "remainingFen": 0}
    # remaining 130 × 100% = 130 of the chosen currency.
    mine = await wallet(u)
    assert (mine["points"], mine["loveValue"]) == ((130, 0) if target == "POINTS" else (0, 130))
    await pay_at(w, await buy(w, product), at("10:05"))  # nobody waits: W's 65 is returned
    entry_w = await only_entry(w)
    assert money(entry_w) == ("WAITING", 130, 0, 130)
    return product, u, w, entry_w


def _using(target: str, product: str, amount: int) -> dict[str, Any]:
    key = "pointsToUse" if target == "POINTS" else "loveValueToUse"
    return {"lines": [{"productId": product, "quantity": 1}], key: amount}


@pytest.mark.parametrize("target", ["POINTS", "LOVE_VALUE"])
async def test_deduction_order_participates_on_the_cash_paid(anonymous, admin, target):
    """§6: under PARTICIPATE an order that used points / love value joins on the cash it paid."""
    product, u, _w, entry_w = await _deduction_setup(anonymous, admin, target)
    assert (await settings(admin, deductionMode="PARTICIPATE"))["deductionMode"] == "PARTICIPATE"

    order = (await u(CREATE_ORDER, input=_using(target, product, 30)))["createOrder"]
    assert (order["totalFen"], order["deductionFen"], order["payableFen"]) == (100, 30, 70)
    settled = await pay_at(u, order, at("10:10"))
    assert settled["lines"][0]["paidFen"] == 70
    # Contribution on the cash: 70 × 65% = 45.5 → 45, to W.
    assert money(await entry_of(admin, entry_w["id"])) == ("WAITING", 130, 45, 85)
    # Entry on the cash: 70 × 130% = 91, behind W (85 ahead).
    [entry] = [e for e in await my_entries(u) if e["orderId"] == order["id"]]
    assert entry["paidFen"] == 70
    assert money(entry) == ("WAITING", 91, 0, 91)
    assert entry["position"] == 2
    assert entry["amountAheadFen"] == 85
    mine = await wallet(u)
    assert (mine["points"], mine["loveValue"]) == ((100, 0) if target == "POINTS" else (0, 100))


@pytest.mark.parametrize("target", ["POINTS", "LOVE_VALUE"])
async def test_deduction_order_not_participating_earns_no_entry_but_contributes(
    anonymous, admin, target
):
    """§6 + §4.1: under NOT_PARTICIPATE a deduction order earns no entry, yet contributes."""
    product, u, _w, entry_w = await _deduction_setup(anonymous, admin, target)
    changed = await settings(admin, deductionMode="NOT_PARTICIPATE")
    assert changed["deductionMode"] == "NOT_PARTICIPATE"

    order = (await u(CREATE_ORDER, input=_using(target, product, 30)))["createOrder"]
    settled = await pay_at(u, order, at("10:10"))
    await assert_no_entry_but_settled(u, settled, "mall", paid_fen=70)
    # Its contribution 70 × 65% = 45 still reaches W.
    assert money(await entry_of(admin, entry_w["id"])) == ("WAITING", 130, 45, 85)

    # An order without deduction still joins under NOT_PARTICIPATE: 65 → W (110), then 130.
    plain = await pay_at(u, await buy(u, product), at("10:15"))
    assert money(await entry_of(admin, entry_w["id"])) == ("WAITING", 130, 110, 20)
    [entry] = [e for e in await my_entries(u) if e["orderId"] == plain["id"]]
    assert money(entry) == ("WAITING", 130, 0, 130)
    assert entry["position"] == 2
    assert entry["amountAheadFen"] == 20


# ----------------------------------------------------------------------------------------------
# Random return (随机返)


def groups_of(entries: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    ordered = sorted(entries, key=lambda e: e["number"])
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


@pytest.mark.parametrize("cash_seats, points_seats, groups", [(2, 1, 3), (1, 2, 3), (3, 1, 2)])
async def test_random_return_converts_exactly_points_seats_per_group(
    anonymous, admin, cash_seats, points_seats, groups
):
    """§6 random return: in each group of cashSeats + pointsSeats entries exactly pointsSeats are
    CONVERTED at once (apply(entitlement, pointsExchangeRatioBp) points), never paid; the
    contributions pass them by."""
    size = cash_seats + points_seats
    rr = {"enabled": True, "cashSeats": cash_seats, "pointsSeats": points_seats}
    assert (await settings(admin, pointsExchangeRatioBp=8000, randomReturn=rr))[
        "randomReturn"
    ] == rr
    # Entries of 130 whose lines contribute nothing (extraction 0%), so nobody is paid yet.
    product = await create_product(admin, "随机返礼盒", 100, extractionRatioBp=0)
    buyers = [await anonymous.login(f"b{i}") for i in range(size * groups)]
    for i, buyer in enumerate(buyers):
        await pay_at(buyer, await buy(buyer, product), at(f"10:{i:02d}"))

    owner = {}
    entries = []
    for buyer in buyers:
        entry = await only_entry(buyer)
        owner[entry["id"]] = buyer
        entries.append(entry)
    assert sorted(e["number"] for e in entries) == list(range(1, size * groups + 1))
    for group in groups_of(entries, size):
        statuses = [e["status"] for e in group]
        assert statuses.count("CONVERTED") == points_seats, statuses
        assert statuses.count("WAITING") == cash_seats, statuses

    converted = [e for e in entries if e["status"] == "CONVERTED"]
    waiting = sorted((e for e in entries if e["status"] == "WAITING"), key=lambda e: e["number"])
    for entry in converted:
        # Shown ended: remaining 0, no place in the queue; the owner got 130 × 80% = 104 points.
        assert money(entry) == ("CONVERTED", 130, 0, 0)
        assert entry["position"] is None
        assert entry["amountAheadFen"] is None
        buyer = owner[entry["id"]]
        assert await wallet(buyer) == {
            "balanceFen": 0,
            "points": 104,
            "loveValue": 0,
            "loveValueFrozen": 0,
        }
        # It never waits, so it cannot be exchanged.
        error = await buyer.error(EXCHANGE, id=entry["id"], target="POINTS")
        assert error.code == "CONFLICT"
    for place, entry in enumerate(waiting, start=1):
        # Positions count the waiting entries only, each 130 ahead.
        assert money(entry) == ("WAITING", 130, 0, 130)
        assert entry["position"] == place
        assert entry["amountAheadFen"] == 130 * (place - 1)
        assert (await wallet(owner[entry["id"]]))["points"] == 0

    # A feeder line (limit 0: never an entry, extraction 100%) contributes 130 × (W − 1) + 30:
    # the first W − 1 waiting entries complete, the last gets 30, converted ones get nothing.
    feed = 130 * (len(waiting) - 1) + 30
    feeder = await create_product(
        admin, "加速包", feed, extractionRatioBp=10000, limitPerUserTotal=0
    )
    payer = await anonymous.login("payer")
    settled = await pay_at(payer, await buy(payer, feeder), at("11:00"))
    await assert_no_entry_but_settled(payer, settled, "mall", paid_fen=feed)
    for entry in waiting[:-1]:
        after = await entry_of(admin, entry["id"])
        assert money(after) == ("COMPLETED", 130, 130, 0)
        assert (await wallet(owner[entry["id"]]))["balanceFen"] == 130
    last = await entry_of(admin, waiting[-1]["id"])
    assert money(last) == ("WAITING", 130, 30, 100)
    assert last["position"] == 1
    for entry in converted:
        after = await entry_of(admin, entry["id"])
        assert money(after) == ("CONVERTED", 130, 0, 0)
        assert after["process"]["items"] == []
        assert (await wallet(owner[entry["id"]]))["balanceFen"] == 0


async def test_random_return_groups_hold_under_simultaneous_payments(anonymous, admin):
    """§6: exactly pointsSeats per group also when many payments of one queue settle at once."""
    await settings(
        admin, extractionRatioBp=0, randomReturn={"enabled": True, "cashSeats": 1, "pointsSeats": 1}
    )
    product = await create_product(admin, "礼盒", 100)
    buyers = [await anonymous.login(f"b{i}") for i in range(10)]
    orders = [await buy(buyer, product) for buyer in buyers]
    replies = await asyncio.gather(
        *[
            wechat_pays(buyer.http, order["outTradeNo"], timeEnd=at("10:00"))
            for buyer, order in zip(buyers, orders, strict=True)
        ]
    )
    assert all("SUCCESS" in reply["reply"] for reply in replies)
    for buyer, order in zip(buyers, orders, strict=True):
        await wait_settled(buyer, order["id"])
    entries = [await only_entry(buyer) for buyer in buyers]
    assert sorted(e["number"] for e in entries) == list(range(1, 11))
    for pair in groups_of(entries, 2):
        assert sorted(e["status"] for e in pair) == ["CONVERTED", "WAITING"]


async def test_a_random_return_points_seat_still_contributes(anonymous, admin):
    """§4.1 + §6: a converted line's contribution is paid to the entries ahead; later contributions
    pass the converted entry by."""
    await settings(admin, pointsExchangeRatioBp=10000)
    product = await create_product(admin, "礼盒", 100)
    a, b, c, d = [await anonymous.login(code) for code in ("a", "b", "c", "d")]
    await pay_at(a, await buy(a, product), at("10:00"))  # random return off: A waits with 130

    # Every seat a points seat: B converts at once (130 × 100% = 130 points), and B's 65 → A.
    await settings(admin, randomReturn={"enabled": True, "cashSeats": 0, "pointsSeats": 1})
    await pay_at(b, await buy(b, product), at("10:05"))
    entry_b = await only_entry(b)
    assert money(entry_b) == ("CONVERTED", 130, 0, 0)
    assert (await wallet(b))["points"] == 130
    assert money(await only_entry(a)) == ("WAITING", 130, 65, 65)

    # Random return off again: C's 65 completes A; C joins behind the converted B at position 1.
    await settings(admin, randomReturn={"enabled": False, "cashSeats": 0, "pointsSeats": 0})
    await pay_at(c, await buy(c, product), at("10:10"))
    assert money(await only_entry(a)) == ("COMPLETED", 130, 130, 0)
    entry_c = await only_entry(c)
    assert money(entry_c) == ("WAITING", 130, 0, 130)
    assert entry_c["position"] == 1
    assert entry_c["number"] == entry_b["number"] + 1
    # D's 65 passes B by and goes to C.
    await pay_at(d, await buy(d, product), at("10:15"))
    assert money(await only_entry(c)) == ("WAITING", 130, 65, 65)
    assert money(await only_entry(b)) == ("CONVERTED", 130, 0, 0)
    assert (await wallet(b)) == {
        "balanceFen": 0,
        "points": 130,
        "loveValue": 0,
        "loveValueFrozen": 0,
    }


async def test_only_eligible_entries_take_random_return_seats(anonymous, admin):
    """§6: the seats number the eligible entries; a line outside its window takes no seat.

    With groups of 2 (one points seat), ineligible lines between the entries must not shift the
    groups: every pair of consecutive entries holds exactly one CONVERTED. (Were ineligible lines
    seated, a pair would hold 0 or 2 with probability 1/2 each time; six pairs catch it 63 in 64.)
    """
    # Extraction 0%: no line pays anyone, so every entry stays WAITING or CONVERTED.
    await settings(
        admin, extractionRatioBp=0, randomReturn={"enabled": True, "cashSeats": 1, "pointsSeats": 1}
    )
    product = await create_product(
        admin, "礼盒", 100, rewardWindows=[{"start": "09:00", "end": "12:00"}]
    )
    u = await anonymous.login("u")
    for i in range(12):
        await pay_at(u, await buy(u, product), at(f"10:{i:02d}"))  # an entry
        if i % 2 == 0:
            late = await pay_at(u, await buy(u, product), at(f"20:{i:02d}"))  # no entry
            await assert_no_entry_but_settled(u, late, "mall")
    entries = await my_entries(u)
    assert len(entries) == 12
    for pair in groups_of(entries, 2):
        assert sorted(e["status"] for e in pair) == ["CONVERTED", "WAITING"]
    # Six conversions of 130 points each (ratio 100% by default).
    assert (await wallet(u))["points"] == 6 * 130


@pytest.mark.parametrize("scope", ["goods", "cashier"])
async def test_per_store_queue_uses_the_store_setting_else_the_plugin(anonymous, admin, scope):
    """§6: in a per-store / per-cashier queue the store's own random return applies when it has
    one, also one switched off; a store without one takes the plugin's."""
    # The plugin's: every seat a points seat. Extraction 0%: nobody is paid, nobody completes.
    await settings(
        admin,
        extractionRatioBp=0,
        allStoresQueue=False,
        allCashiersQueue=False,
        randomReturn={"enabled": True, "cashSeats": 0, "pointsSeats": 1},
    )
    key = "goods" if scope == "goods" else "cashier"
    own = await make_store(
        admin,
        "自设店",
        **{key: {"randomReturn": {"enabled": True, "cashSeats": 1, "pointsSeats": 1}}},
    )
    off = await make_store(
        admin,
        "关闭店",
        **{key: {"randomReturn": {"enabled": False, "cashSeats": 0, "pointsSeats": 0}}},
    )
    plain = await make_store(admin, "默认店")
    prefix = "store" if scope == "goods" else "cashier"
    products = {}
    if scope == "goods":
        for store in (own, off, plain):
            products[store] = await store_product(admin, store, "套餐", 100)

    async def pay(consumer: Api, store: str, minute: int) -> None:
        order = (
            await buy(consumer, products[store])
            if scope == "goods"
            else await at_cashier(consumer, store, 100)
        )
        await pay_at(consumer, order, at(f"10:{minute:02d}"))

    u = await anonymous.login("u")
    for i in range(6):
        await pay(u, own, i)
    for i in range(3):
        await pay(u, off, 10 + i)
        await pay(u, plain, 20 + i)
    entries = await my_entries(u)
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_queue.setdefault(entry["queueKey"], []).append(entry)
    assert set(by_queue) == {f"{prefix}:{own}", f"{prefix}:{off}", f"{prefix}:{plain}"}
    # The store's own 1 + 1: one of each pair converted.
    for pair in groups_of(by_queue[f"{prefix}:{own}"], 2):
        assert sorted(e["status"] for e in pair) == ["CONVERTED", "WAITING"]
    # Switched off by the store: nobody converts, whatever the plugin says.
    assert [e["status"] for e in by_queue[f"{prefix}:{off}"]] == ["WAITING"] * 3
    # No setting of its own: the plugin's, every entry converted.
    assert [e["status"] for e in by_queue[f"{prefix}:{plain}"]] == ["CONVERTED"] * 3
    # 3 + 3 conversions of 130 × 100% = 130 points.
    assert (await wallet(u))["points"] == 6 * 130


@pytest.mark.parametrize("scope", ["goods", "cashier"])
@pytest.mark.parametrize("plugin_on", [True, False])
async def test_shared_queue_uses_the_plugin_setting_even_if_the_store_has_one(
    anonymous, admin, scope, plugin_on
):
    """§6: in the shared stores / cashiers queues the plugin's random return applies."""
    plugin = (
        {"enabled": True, "cashSeats": 0, "pointsSeats": 1}
        if plugin_on
        else {"enabled": False, "cashSeats": 0, "pointsSeats": 0}
    )
    store_setting = (
        {"enabled": False, "cashSeats": 0, "pointsSeats": 0}
        if plugin_on
        else {"enabled": True, "cashSeats": 0, "pointsSeats": 1}
    )
    # Extraction 0%: nobody is paid, so a cash seat stays WAITING.
    await settings(
        admin,
        extractionRatioBp=0,
        allStoresQueue=True,
        allCashiersQueue=True,
        randomReturn=plugin,
    )
    key = "goods" if scope == "goods" else "cashier"
    store = await make_store(admin, "自设店", **{key: {"randomReturn": store_setting}})
    product = await store_product(admin, store, "套餐", 100) if scope == "goods" else None
    queue = "stores" if scope == "goods" else "cashiers"

    u = await anonymous.login("u")
    for i in range(3):
        order = await buy(u, product) if product else await at_cashier(u, store, 100)
        await pay_at(u, order, at(f"10:{i:02d}"))
    entries = await my_entries(u)
    assert {e["queueKey"] for e in entries} == {queue}
    expected = "CONVERTED" if plugin_on else "WAITING"
    assert [e["status"] for e in entries] == [expected] * 3
    assert (await wallet(u))["points"] == (3 * 130 if plugin_on else 0)


# ----------------------------------------------------------------------------------------------
# Bad settings of §6 are refused and change nothing


@pytest.mark.parametrize(
    "rebate, field",
    [
        ({"rewardWindows": [{"start": "24:00", "end": "02:00"}]}, "rewardWindows"),
        ({"rewardWindows": [{"start": "9:00", "end": "10:00"}]}, "rewardWindows"),
        ({"rewardWindows": [{"start": "09:00", "end": "10:60"}]}, "rewardWindows"),
        ({"rewardWindows": None}, "rewardWindows"),
        ({"limitPerUserPerDay": -1}, "limitPerUserPerDay"),
        ({"limitPerUserTotal": -1}, "limitPerUserTotal"),
    ],
)
async def test_bad_windows_and_limits_are_refused(admin, rebate, field):
    """§6 settings: malformed windows and negative limits are BAD_USER_INPUT and change nothing."""
    product = await create_product(
        admin, "礼盒", 100, rewardWindows=[{"start": "10:00", "end": "12:00"}], limitPerUserTotal=2
    )
    before = (await admin(PRODUCT, input={"id": product}))["upsertProduct"]
    error = await admin.error(PRODUCT, input={"id": product, "rebate": rebate})
    assert error.code == "BAD_USER_INPUT"
    assert field in error.errors[0]["message"]
    assert (await admin(PRODUCT, input={"id": product}))["upsertProduct"] == before


@pytest.mark.parametrize(
    "random_return",
    [
        {"enabled": True, "cashSeats": 0, "pointsSeats": 0},
        {"enabled": True, "cashSeats": -1, "pointsSeats": 2},
        {"enabled": True, "cashSeats": 1, "pointsSeats": -1},
    ],
)
@pytest.mark.parametrize("scope", ["goodsRebate", "cashierRebate"])
async def test_bad_store_random_return_is_refused(admin, random_return, scope):
    """§6 settings: a store's random return needs a seat per group and no negative seats."""
    store = await make_store(admin, "一号店")
    before = (await admin(STORE, input={"id": store}))["upsertStore"]
    error = await admin.error(STORE, input={"id": store, scope: {"randomReturn": random_return}})
    assert error.code == "BAD_USER_INPUT"
    assert "randomReturn" in error.errors[0]["message"]
    assert (await admin(STORE, input={"id": store}))["upsertStore"] == before
