"""The queue law of SPEC §7 (distribution), §9 (exchange), §10 (reset) and §11 (refunds), with
§12's rule that an ended entry shows remaining 0 and no position, played through GraphQL and the
fake WeChat.

Every amount is worked out by hand. Plugin defaults unless a test says otherwise: extraction 65%
(6500 bp), default reward 130% (13000 bp), points and love-value exchange 100%, love value
available (not frozen), settleOn PAID, rewardOrder QUEUE_ORDER, mallQueue on (every mall line is in
the queue `mall`). `apply(amount, bp) = amount * bp // 10000`. Most tests use a 100-fen product:
entitlement apply(100, 13000) = 130, contribution apply(100, 6500) = 65.
"""

from __future__ import annotations

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
    pay_and_settle,
    wechat_pays,
)

UPDATE_SETTINGS = """mutation($input: RebateSettingsInput!) {
  updateRebateSettings(input: $input) { rewardOrder settleOn paused } }"""
ENTRY = f"query($id: ID!) {{ entry(id: $id) {{ {ENTRY_FIELDS} }} }}"
WALLET = "{ wallet { balanceFen pendingCommissionFen points loveValue loveValueFrozen } }"
STATS = """query($key: String) { queueStats(queueKey: $key) {
  queueKey waitingEntries liabilityFen returnedFen } }"""
COMPLETE = "mutation($id: ID!) { completeOrder(orderId: $id) { id status } }"
CONFIRM = "mutation($id: ID!) { confirmReceipt(orderId: $id) { id status } }"
REFUND = 'mutation($id: ID!) { refundOrder(orderId: $id, reason: "test") { id status } }'
RESET = "mutation { resetQueuesNow }"
EXCHANGE = (
    "mutation($id: ID!, $target: ExchangeTarget!) { exchangeEntry(entryId: $id, target: $target) "
    "{ " + ENTRY_FIELDS + " } }"
)
TRANSFER = """mutation($to: ID!, $points: Int!) { transferPoints(toUserId: $to, points: $points) {
  balanceFen points loveValue loveValueFrozen } }"""
CREATE_ORDER = (
    "mutation($input: CreateOrderInput!) { createOrder(input: $input) { " + ORDER_FIELDS + " } }"
)
UPSERT_STORE = "mutation($input: StoreInput!) { upsertStore(input: $input) { id } }"
CASHIER_ORDER = (
    "mutation($input: CashierOrderInput!) { createCashierOrder(input: $input) { "
    + ORDER_FIELDS
    + " } }"
)


# ---------------------------------------------------------------- helpers


async def settings(admin: Api, **change: Any) -> None:
    await admin(UPDATE_SETTINGS, input=change)


async def purchase(consumer: Api, product_id: str, quantity: int = 1) -> dict[str, Any]:
    """Buy, let the fake WeChat pay, and wait for the settlement event (settleOn PAID)."""
    return await pay_and_settle(consumer, await buy(consumer, product_id, quantity))


async def paid_unsettled(server, consumer: Api, product_id: str) -> dict[str, Any]:
    """Buy and pay an order that will not settle yet (settleOn COMPLETED): drain the jobs."""
    order = await buy(consumer, product_id)
    reply = await wechat_pays(consumer.http, order["outTradeNo"])
    assert "SUCCESS" in reply["reply"], reply
    await server.services.jobs.drain()
    return await order_of(consumer, order["id"])


async def only_entry(consumer: Api) -> dict[str, Any]:
    [entry] = await my_entries(consumer)
    return entry


async def entry_of(api: Api, entry_id: str) -> dict[str, Any]:
    return (await api(ENTRY, id=entry_id))["entry"]


async def wallet(consumer: Api) -> dict[str, Any]:
    return (await consumer(WALLET))["wallet"]


async def stats(admin: Api, key: str = "mall") -> dict[str, Any]:
    [row] = (await admin(STATS, key=key))["queueStats"]
    return row


def paid_to(entry: dict[str, Any]) -> list[tuple[str, int]]:
    return [(p["fromOrderId"], p["amountFen"]) for p in entry["process"]["items"]]


def assert_ended(entry: dict[str, Any], status: str, rewarded: int) -> None:
    """§12: an ended entry shows remaining 0 and neither position nor amount ahead."""
    assert entry["status"] == status
    assert entry["rewardedFen"] == rewarded
    assert entry["remainingFen"] == 0
    assert entry["position"] is None
    assert entry["amountAheadFen"] is None


def assert_waiting(entry: dict[str, Any], rewarded: int, remaining: int) -> None:
    assert entry["status"] == "WAITING"
    assert entry["rewardedFen"] == rewarded
    assert entry["remainingFen"] == remaining


# ---------------------------------------------------------------- §7 distribution


async def test_contribution_pays_in_entry_order_each_min_of_left_and_remaining(anonymous, admin):
    """§7: payout order, each min(left, remaining); remaining 0 → COMPLETED; wallet = payouts."""
    p100 = await create_product(admin, "小礼盒", 100)
    p300 = await create_product(admin, "大礼盒", 300)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    await purchase(a, p100)  # A: entitlement 130; its own 65 is returned (nobody ahead)
    order_b = await purchase(b, p100)  # B's 65 → A (rewarded 65, remaining 65); B: 130
    order_c = await purchase(c, p300)
    # C's contribution apply(300, 6500) = 195: A first takes min(195, 65) = 65 → remaining 0,
    # COMPLETED; the 130 left goes to B: min(130, 130) = 130 → B COMPLETED too; nothing returned.
    entry_a, entry_b, entry_c = await only_entry(a), await only_entry(b), await only_entry(c)
    assert_ended(entry_a, "COMPLETED", 130)
    assert entry_a["progressBp"] == 10000
    assert paid_to(entry_a) == [(order_b["id"], 65), (order_c["id"], 65)]
    assert_ended(entry_b, "COMPLETED", 130)
    assert paid_to(entry_b) == [(order_c["id"], 130)]
    # C: entitlement apply(300, 13000) = 390, nobody ahead of it.
    assert_waiting(entry_c, 0, 390)
    assert entry_c["position"] == 1
    assert entry_c["amountAheadFen"] == 0
    # Each owner's balance is the sum of the payouts received.
    assert (await wallet(a))["balanceFen"] == 130
    assert (await wallet(b))["balanceFen"] == 130
    assert (await wallet(c))["balanceFen"] == 0
    # Returned so far: only A's own 65.


async def test_a_contribution_stops_at_the_first_entry_it_cannot_fill(anonymous, admin):
    """§7: min(left, remaining): a contribution smaller than the head's remaining stays there."""
    p100 = await create_product(admin, "小礼盒", 100)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await purchase(a, p100)  # A: 130
    await purchase(b, p100)  # 65 → A (remaining 65); B: 130
    await purchase(c, p100)  # 65 → A: min(65, 65) = 65 → A COMPLETED; B still 0
    assert_ended(await only_entry(a), "COMPLETED", 130)
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 0, 130)
    assert entry_b["position"] == 1
    entry_c = await only_entry(c)
    assert entry_c["position"] == 2
    assert entry_c["amountAheadFen"] == 130


async def test_leftover_is_returned_at_once_and_never_carried_over(anonymous, admin):
    """§7: what nobody eligible can take is returned; a later entry never gets that leftover."""
    p100 = await create_product(admin, "小礼盒", 100)
    p1000 = await create_product(admin, "大礼盒", 1000)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]

    await purchase(a, p100)  # A: entitlement 130; its 65 is returned
    await purchase(b, p1000)
    # B's contribution apply(1000, 6500) = 650: 130 to A (COMPLETED), 520 returned at once.
    # B joins afterwards (an order never pays itself): entitlement apply(1000, 13000) = 1300.
    assert_ended(await only_entry(a), "COMPLETED", 130)
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 0, 1300)

    order_c = await purchase(c, p100)
    # C's 65 goes to B; the 520 returned earlier is not held for B: B gets 65, not 585.
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 65, 1235)
    assert paid_to(entry_b) == [(order_c["id"], 65)]
    assert (await wallet(b))["balanceFen"] == 65


async def test_returned_amounts_are_recorded_per_queue(anonymous, admin):
    """§7: what is returned to the platform is recorded (queueStats.returnedFen), never held."""
    p100 = await create_product(admin, "小礼盒", 100)
    p1000 = await create_product(admin, "大礼盒", 1000)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await purchase(a, p100)  # A's 65: nobody ahead → returned
    await purchase(b, p1000)  # 650: 130 → A (COMPLETED), 520 returned
    row = await stats(admin)
    # Waiting: B alone, remaining 1300; returned 65 + 520 = 585.
    assert row == {
        "queueKey": "mall",
        "waitingEntries": 1,
        "liabilityFen": 1300,
        "returnedFen": 585,
    }


async def test_queue_order_pays_entries_whose_order_is_not_completed(anonymous, admin):
    """§7 QUEUE_ORDER: every waiting entry is eligible whether or not its order is completed."""
    await settings(admin, rewardOrder="QUEUE_ORDER")
    p100 = await create_product(admin, "小礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    order_a = await purchase(a, p100)
    order_b = await purchase(b, p100)
    # A's order is only PAID, yet B's 65 goes to A.
    assert (await order_of(a, order_a["id"]))["status"] == "PAID"
    entry_a = await only_entry(a)
    assert_waiting(entry_a, 65, 65)
    assert paid_to(entry_a) == [(order_b["id"], 65)]
    assert (await wallet(a))["balanceFen"] == 65


async def test_completed_first_passes_over_an_uncompleted_entry_until_the_operator_completes_it(
    anonymous, admin
):
    """§7 COMPLETED_FIRST: only completed orders' entries are paid; an uncompleted one keeps its
    place, is passed over, and takes its turn once completeOrder completes its order."""
    await settings(admin, rewardOrder="COMPLETED_FIRST", settleOn="PAID")
    p100 = await create_product(admin, "小礼盒", 100)
    p300 = await create_product(admin, "大礼盒", 300)
    a, b, c, d = [await anonymous.login(code) for code in ("a", "b", "c", "d")]

    order_a = await purchase(a, p100)  # A: 130, order PAID (not completed); its 65 returned
    order_b = await purchase(b, p100)  # B's 65: A is not eligible → returned
    entry_a = await only_entry(a)
    assert_waiting(entry_a, 0, 130)

    await admin(COMPLETE, id=order_b["id"])
    order_c = await purchase(c, p100)
    # C's 65: A (ahead, uncompleted) is passed over; B (completed) takes it.
    assert_waiting(await only_entry(a), 0, 130)
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 65, 65)
    assert paid_to(entry_b) == [(order_c["id"], 65)]

    await admin(COMPLETE, id=order_a["id"])
    order_d = await purchase(d, p300)
    # D's 195: A kept its place ahead of B, so A takes 130 first (COMPLETED), then B 65 (COMPLETED).
    entry_a = await only_entry(a)
    assert_ended(entry_a, "COMPLETED", 130)
    assert paid_to(entry_a) == [(order_d["id"], 130)]
    entry_b = await only_entry(b)
    assert_ended(entry_b, "COMPLETED", 130)
    assert paid_to(entry_b) == [(order_c["id"], 65), (order_d["id"], 65)]
    # C's entry is not eligible (its order is only PAID): it received nothing.
    assert_waiting(await only_entry(c), 0, 130)
    assert (await wallet(a))["balanceFen"] == 130
    assert (await wallet(b))["balanceFen"] == 130


async def test_completed_first_entry_takes_its_turn_after_the_buyer_confirms_receipt(
    anonymous, admin
):
    """§7 COMPLETED_FIRST: the buyer's confirmReceipt makes the entry eligible too."""
    await settings(admin, rewardOrder="COMPLETED_FIRST", settleOn="PAID")
    p100 = await create_product(admin, "小礼盒", 100)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    order_a = await purchase(a, p100)  # A: 130, 65 returned
    await purchase(b, p100)  # 65 returned: A's order is not completed
    assert_waiting(await only_entry(a), 0, 130)

    confirmed = (await a(CONFIRM, id=order_a["id"]))["confirmReceipt"]
    assert confirmed["status"] == "COMPLETED"
    order_c = await purchase(c, p100)  # C's 65 → A, now eligible
    entry_a = await only_entry(a)
    assert_waiting(entry_a, 65, 65)
    assert paid_to(entry_a) == [(order_c["id"], 65)]
    assert (await wallet(a))["balanceFen"] == 65


async def test_completed_first_with_settlement_on_completion_pays_like_queue_order(
    server, anonymous, admin
):
    """§7: with settleOn COMPLETED every entry joins completed, so COMPLETED_FIRST pays in entry
    order exactly as QUEUE_ORDER would."""
    await settings(admin, rewardOrder="COMPLETED_FIRST", settleOn="COMPLETED")
    p100 = await create_product(admin, "小礼盒", 100)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    orders = {}
    for name, consumer in (("a", a), ("b", b), ("c", c)):
        orders[name] = await paid_unsettled(server, consumer, p100)
        assert await my_entries(consumer) == []  # paid, not settled: no entry yet
        await admin(COMPLETE, id=orders[name]["id"])
        await server.services.jobs.drain()
        assert (await order_of(consumer, orders[name]["id"]))["settled"] is True
    # A: 130; B's 65 → A; C's 65 → A → COMPLETED. B and C wait, B first.
    entry_a = await only_entry(a)
    assert_ended(entry_a, "COMPLETED", 130)
    assert paid_to(entry_a) == [(orders["b"]["id"], 65), (orders["c"]["id"], 65)]
    entry_b, entry_c = await only_entry(b), await only_entry(c)
    assert_waiting(entry_b, 0, 130)
    assert (entry_b["position"], entry_c["position"]) == (1, 2)
    assert entry_c["amountAheadFen"] == 130
    assert (await wallet(a))["balanceFen"] == 130


async def test_completed_first_position_counts_only_eligible_waiting_entries(anonymous, admin):
    """§7/§12: under COMPLETED_FIRST position = 1 + eligible waiting entries ahead; an entry not yet
    eligible counts the eligible waiting entries with a lower number; amount ahead sums them."""
    await settings(admin, rewardOrder="COMPLETED_FIRST", settleOn="PAID")
    p100 = await create_product(admin, "小礼盒", 100)
    p1000 = await create_product(admin, "大礼盒", 1000)
    a, b, c, d = [await anonymous.login(code) for code in ("a", "b", "c", "d")]

    order_a = await purchase(a, p100)  # A #1: 130, uncompleted; 65 returned
    order_b = await purchase(b, p1000)  # B #2: 1300; its 650 returned (A not eligible)
    await admin(COMPLETE, id=order_b["id"])
    await purchase(c, p100)  # C #3: 130, uncompleted; its 65 → B (remaining 1235)
    order_d = await purchase(d, p1000)  # D #4: 1300; its 650 → B (remaining 585)
    await admin(COMPLETE, id=order_d["id"])
    ea, eb, ec, ed = [await only_entry(x) for x in (a, b, c, d)]
    assert [e["number"] for e in (ea, eb, ec, ed)] == [1, 2, 3, 4]
    assert_waiting(eb, 715, 585)
    # Eligible: B and D. B has no eligible entry ahead; D has B.
    assert (eb["position"], eb["amountAheadFen"]) == (1, 0)
    assert (ed["position"], ed["amountAheadFen"]) == (2, 585)
    # Not eligible: A has no eligible entry with a lower number; C has B.
    assert (ea["position"], ea["amountAheadFen"]) == (1, 0)
    assert (ec["position"], ec["amountAheadFen"]) == (2, 585)

    await admin(COMPLETE, id=order_a["id"])
    ea, eb, ec, ed = [await only_entry(x) for x in (a, b, c, d)]
    # Now A (130) is eligible and ahead of everyone.
    assert (ea["position"], ea["amountAheadFen"]) == (1, 0)
    assert (eb["position"], eb["amountAheadFen"]) == (2, 130)
    assert (ec["position"], ec["amountAheadFen"]) == (3, 130 + 585)
    assert (ed["position"], ed["amountAheadFen"]) == (3, 130 + 585)


async def test_paused_queue_takes_entries_and_contributions_but_returns_everything(
    anonymous, admin
):
    """§7 paused: entries join, lines contribute, all is returned; unpausing pays nothing back."""
    await settings(admin, paused=True)
    p100 = await create_product(admin, "小礼盒", 100)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    order_a = await purchase(a, p100)
    order_b = await purchase(b, p100)
    assert order_a["lines"][0]["queueKey"] == "mall"
    assert order_b["lines"][0]["queueKey"] == "mall"
    # Both joined; both contributions (65 + 65) were returned; A received nothing.
    assert_waiting(await only_entry(a), 0, 130)
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 0, 130)
    assert entry_b["position"] == 2

    await settings(admin, paused=False)
    # Lifting the pause pays nothing retroactively.
    entry_a = await only_entry(a)
    assert_waiting(entry_a, 0, 130)
    assert entry_a["process"]["items"] == []
    assert (await wallet(a))["balanceFen"] == 0

    order_c = await purchase(c, p100)  # after the pause: C's 65 → A as usual
    entry_a = await only_entry(a)
    assert_waiting(entry_a, 65, 65)
    assert paid_to(entry_a) == [(order_c["id"], 65)]
    assert (await wallet(a))["balanceFen"] == 65


# ---------------------------------------------------------------- §9 exchange


async def test_exchange_for_points_leaves_the_queue(anonymous, admin):
    """§9: points = apply(remaining, pointsExchangeRatioBp); EXCHANGED; the next contribution goes
    to the entry behind it; payouts already received stay in the wallet."""
    await settings(admin, pointsExchangeRatioBp=5000)
    p100 = await create_product(admin, "小礼盒", 100)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await purchase(a, p100)  # A: 130
    await purchase(b, p100)  # 65 → A (remaining 65); B: 130
    entry_a = await only_entry(a)
    assert_waiting(entry_a, 65, 65)
    assert (await only_entry(b))["position"] == 2

    exchanged = (await a(EXCHANGE, id=entry_a["id"], target="POINTS"))["exchangeEntry"]
    # apply(65, 5000) = 32 points.
    assert_ended(exchanged, "EXCHANGED", 65)
    assert_ended(await entry_of(a, entry_a["id"]), "EXCHANGED", 65)
    assert await wallet(a) == {
        "balanceFen": 65,
        "pendingCommissionFen": 0,
        "points": 32,
        "loveValue": 0,
        "loveValueFrozen": 0,
    }
    entry_b = await only_entry(b)
    assert (entry_b["position"], entry_b["amountAheadFen"]) == (1, 0)

    order_c = await purchase(c, p100)  # C's 65 → B, the entry behind A
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 65, 65)
    assert paid_to(entry_b) == [(order_c["id"], 65)]
    assert_ended(await only_entry(a), "EXCHANGED", 65)
    assert (await wallet(a))["balanceFen"] == 65
    assert (await wallet(b))["balanceFen"] == 65


async def test_exchange_for_love_value_lands_available(anonymous, admin):
    """§9: love value = apply(remaining, loveValueExchangeRatioBp), available when not frozen."""
    await settings(admin, loveValueExchangeRatioBp=15000, loveValueFrozen=False)
    p100 = await create_product(admin, "小礼盒", 100)
    a = await anonymous.login("a")
    await purchase(a, p100)  # A: 130, nothing received
    entry_a = await only_entry(a)
    exchanged = (await a(EXCHANGE, id=entry_a["id"], target="LOVE_VALUE"))["exchangeEntry"]
    assert_ended(exchanged, "EXCHANGED", 0)
    # apply(130, 15000) = 195 love value, available.
    w = await wallet(a)
    assert (w["loveValue"], w["loveValueFrozen"], w["points"], w["balanceFen"]) == (195, 0, 0, 0)


async def test_exchange_for_love_value_lands_frozen_and_cannot_be_spent(anonymous, admin):
    """§9: with loveValueFrozen the love value lands frozen; only available love value deducts."""
    await settings(admin, loveValueExchangeRatioBp=10000, loveValueFrozen=True)
    p100 = await create_product(admin, "小礼盒", 100)
    a = await anonymous.login("a")
    await purchase(a, p100)
    entry_a = await only_entry(a)
    await a(EXCHANGE, id=entry_a["id"], target="LOVE_VALUE")
    # apply(130, 10000) = 130, frozen.
    w = await wallet(a)
    assert (w["loveValue"], w["loveValueFrozen"]) == (0, 130)

    error = await a.error(
        CREATE_ORDER, input={"lines": [{"productId": p100, "quantity": 1}], "loveValueToUse": 1}
    )
    assert error.code == "BAD_USER_INPUT"
    # No order was opened: A has only the first one.
    assert len((await a("{ myOrders { items { id } } }"))["myOrders"]["items"]) == 1
    assert (await wallet(a))["loveValueFrozen"] == 130


async def _entry_in_state(anonymous: Api, admin: Api, state: str) -> tuple[Api, str]:
    """A's entry, brought to `state` (COMPLETED, EXCHANGED, CLEARED, CANCELLED)."""
    p100 = await create_product(admin, "小礼盒", 100)
    a = await anonymous.login("a")
    order_a = await purchase(a, p100)
    entry_id = (await only_entry(a))["id"]
    if state == "COMPLETED":
        b, c = await anonymous.login("b"), await anonymous.login("c")
        await purchase(b, p100)
        await purchase(c, p100)  # 65 + 65 = 130 → A COMPLETED
    elif state == "EXCHANGED":
        await a(EXCHANGE, id=entry_id, target="POINTS")
    elif state == "CLEARED":
        assert (await admin(RESET))["resetQueuesNow"] == 1
    elif state == "CANCELLED":
        await admin(REFUND, id=order_a["id"])
    assert (await entry_of(a, entry_id))["status"] == state
    return a, entry_id


@pytest.mark.parametrize("state", ["COMPLETED", "EXCHANGED", "CLEARED", "CANCELLED"])
@pytest.mark.parametrize("target", ["POINTS", "LOVE_VALUE"])
async def test_exchanging_an_entry_that_is_not_waiting_is_a_conflict(
    anonymous, admin, state, target
):
    """§9: exchanging an entry that is not WAITING is a CONFLICT and changes nothing."""
    a, entry_id = await _entry_in_state(anonymous, admin, state)
    before_entry, before_wallet = await entry_of(a, entry_id), await wallet(a)
    error = await a.error(EXCHANGE, id=entry_id, target=target)
    assert error.code == "CONFLICT"
    assert await entry_of(a, entry_id) == before_entry
    assert await wallet(a) == before_wallet


async def test_exchanging_someone_elses_entry_is_not_found(anonymous, admin):
    """§9: only the owner exchanges an entry; another user's is NOT_FOUND and stays WAITING."""
    p100 = await create_product(admin, "小礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await purchase(a, p100)
    entry_a = await only_entry(a)
    error = await b.error(EXCHANGE, id=entry_a["id"], target="POINTS")
    assert error.code == "NOT_FOUND"
    assert_waiting(await entry_of(a, entry_a["id"]), 0, 130)
    assert (await wallet(b))["points"] == 0
    assert (await wallet(a))["points"] == 0
    error = await b.error(EXCHANGE, id="999999", target="POINTS")
    assert error.code == "NOT_FOUND"


async def test_points_and_available_love_value_deduct_one_fen_each_at_checkout(anonymous, admin):
    """§9: exchanged points and available love value pay for an order, one fen each."""
    p100 = await create_product(admin, "小礼盒", 100)
    p300 = await create_product(admin, "大礼盒", 300)
    a = await anonymous.login("a")
    await purchase(a, p100)  # entry 1: 130
    await purchase(a, p100)  # its 65 → entry 1 (remaining 65); entry 2: 130
    second, first = await my_entries(a)  # newest first
    assert_waiting(first, 65, 65)
    await a(EXCHANGE, id=first["id"], target="POINTS")  # apply(65, 10000) = 65 points
    await a(EXCHANGE, id=second["id"], target="LOVE_VALUE")  # apply(130, 10000) = 130 love value
    w = await wallet(a)
    assert (w["balanceFen"], w["points"], w["loveValue"]) == (65, 65, 130)

    created = (
        await a(
            CREATE_ORDER,
            input={
                "lines": [{"productId": p300, "quantity": 1}],
                "pointsToUse": 65,
                "loveValueToUse": 130,
            },
        )
    )["createOrder"]
    # 300 − 65 − 130 = 105 to pay in cash.
    assert (created["totalFen"], created["deductionFen"], created["payableFen"]) == (300, 195, 105)
    w = await wallet(a)
    assert (w["points"], w["loveValue"]) == (0, 0)
    settled = await pay_and_settle(a, created)
    assert settled["lines"][0]["paidFen"] == 105
    newest = (await my_entries(a))[0]
    # Default deductionMode PARTICIPATE: an entry on the cash paid, apply(105, 13000) = 136.
    assert (newest["paidFen"], newest["entitlementFen"]) == (105, 136)


async def test_points_transfer_to_another_user(anonymous, admin):
    """§9 转让: points move from one user's wallet to another's, who can spend them."""
    p100 = await create_product(admin, "小礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await purchase(a, p100)
    await a(EXCHANGE, id=(await only_entry(a))["id"], target="POINTS")  # 130 points
    after = (await a(TRANSFER, to=b.user_id, points=30))["transferPoints"]
    assert after["points"] == 100
    assert (await wallet(a))["points"] == 100
    assert (await wallet(b))["points"] == 30
    created = (
        await b(
            CREATE_ORDER,
            input={"lines": [{"productId": p100, "quantity": 1}], "pointsToUse": 30},
        )
    )["createOrder"]
    assert created["payableFen"] == 70
    assert (await wallet(b))["points"] == 0


@pytest.mark.parametrize(
    "to, points, code",
    [
        ("B", 131, "BAD_USER_INPUT"),  # more than A holds (130)
        ("A", 10, "BAD_USER_INPUT"),  # to oneself
        ("B", 0, "BAD_USER_INPUT"),
        ("B", -5, "BAD_USER_INPUT"),
        ("999999", 10, "NOT_FOUND"),  # nobody has this id
    ],
)
async def test_bad_points_transfers_change_nothing(anonymous, admin, to, points, code):
    """§9 转让: too many, to oneself, zero, negative → BAD_USER_INPUT; unknown user → NOT_FOUND."""
    p100 = await create_product(admin, "小礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await purchase(a, p100)
    await a(EXCHANGE, id=(await only_entry(a))["id"], target="POINTS")  # 130 points
    target = {"A": a.user_id, "B": b.user_id}.get(to, to)
    error = await a.error(TRANSFER, to=target, points=points)
    assert error.code == code
    assert (await wallet(a))["points"] == 130
    assert (await wallet(b))["points"] == 0


# ---------------------------------------------------------------- §10 reset


async def test_reset_now_clears_every_waiting_entry_of_every_queue(anonymous, admin):
    """§10: resetQueuesNow clears WAITING entries of all queues (remaining forfeited), returns how
    many, and leaves completed and exchanged entries alone."""
    p100 = await create_product(admin, "小礼盒", 100)
    store = (await admin(UPSERT_STORE, input={"name": "门店", "cashierRebate": {"enabled": True}}))[
        "upsertStore"
    ]["id"]
    a, b, c, d, e = [await anonymous.login(code) for code in ("a", "b", "c", "d", "e")]
    await purchase(a, p100)  # A: 130
    await purchase(b, p100)  # 65 → A
    await purchase(c, p100)  # 65 → A: COMPLETED
    await purchase(d, p100)  # 65 → B (remaining 65); D: 130
    await d(EXCHANGE, id=(await only_entry(d))["id"], target="POINTS")  # D: EXCHANGED, 130 points
    cashier_order = (await e(CASHIER_ORDER, input={"storeId": store, "amountFen": 100}))[
        "createCashierOrder"
    ]
    settled = await pay_and_settle(e, cashier_order)
    assert settled["lines"][0]["queueKey"] == f"cashier:{store}"
    # Waiting now: B (mall, rewarded 65), C (mall), E (cashier queue).

    cleared = (await admin(RESET))["resetQueuesNow"]
    assert cleared == 3
    assert_ended(await only_entry(b), "CLEARED", 65)
    assert_ended(await only_entry(c), "CLEARED", 0)
    assert_ended(await only_entry(e), "CLEARED", 0)
    assert_ended(await only_entry(a), "COMPLETED", 130)
    assert_ended(await only_entry(d), "EXCHANGED", 0)
    # Payouts received stay; what was forfeited is not paid.
    assert (await wallet(a))["balanceFen"] == 130
    assert (await wallet(b))["balanceFen"] == 65
    assert (await wallet(d))["points"] == 130
    # Nothing is waiting any more: a second reset clears nothing.
    assert (await admin(RESET))["resetQueuesNow"] == 0


async def test_after_a_reset_contributions_find_nobody_and_new_entries_are_paid(anonymous, admin):
    """§10: after the reset the next contribution is returned; new entries join and are paid."""
    p100 = await create_product(admin, "小礼盒", 100)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await purchase(a, p100)  # A: 130; 65 returned
    assert (await admin(RESET))["resetQueuesNow"] == 1
    await purchase(b, p100)  # B's 65: nobody waits → returned; B joins
    assert_ended(await only_entry(a), "CLEARED", 0)
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 0, 130)
    assert (entry_b["position"], entry_b["amountAheadFen"]) == (1, 0)

    order_c = await purchase(c, p100)  # C's 65 → B
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 65, 65)
    assert paid_to(entry_b) == [(order_c["id"], 65)]
    assert (await wallet(b))["balanceFen"] == 65
    assert (await wallet(a))["balanceFen"] == 0
    assert_ended(await only_entry(a), "CLEARED", 0)


async def test_a_consumer_cannot_reset_the_queues(anonymous, admin):
    """§10: resetQueuesNow is the operator's: a consumer gets FORBIDDEN and nothing is cleared."""
    p100 = await create_product(admin, "小礼盒", 100)
    a = await anonymous.login("a")
    await purchase(a, p100)
    error = await a.error(RESET)
    assert error.code == "FORBIDDEN"
    assert_waiting(await only_entry(a), 0, 130)


# ---------------------------------------------------------------- §11 refunds


async def test_a_line_refunded_before_its_settlement_event_never_touches_a_queue(
    server, anonymous, admin
):
    """§11: settleOn COMPLETED, paid and refunded before completion: no entry, no contribution."""
    await settings(admin, settleOn="COMPLETED")
    p100 = await create_product(admin, "小礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    order_a = await paid_unsettled(server, a, p100)
    await admin(COMPLETE, id=order_a["id"])
    await server.services.jobs.drain()
    assert (await order_of(a, order_a["id"]))["settled"] is True
    assert_waiting(await only_entry(a), 0, 130)  # A's own 65 returned

    order_b = await paid_unsettled(server, b, p100)
    assert (order_b["status"], order_b["settled"]) == ("PAID", False)
    refunded = (await admin(REFUND, id=order_b["id"]))["refundOrder"]
    assert refunded["status"] == "REFUNDED"
    await server.services.jobs.drain()

    order_b = await order_of(b, order_b["id"])
    assert (order_b["status"], order_b["settled"]) == ("REFUNDED", False)
    assert order_b["lines"][0]["queueKey"] is None
    assert await my_entries(b) == []
    # B's line contributed nothing: A, ahead of it, received nothing; only A's 65 was returned.
    assert_waiting(await only_entry(a), 0, 130)
    assert (await wallet(a))["balanceFen"] == 0
    # A refunded order can no longer be completed into the queue.
    assert (await admin.error(COMPLETE, id=order_b["id"])).code == "CONFLICT"
    await server.services.jobs.drain()
    assert await my_entries(b) == []


async def test_refund_after_settlement_cancels_the_waiting_entry_and_keeps_its_payouts(
    anonymous, admin
):
    """§11: the WAITING entry becomes CANCELLED, remaining forfeited; payouts received stay."""
    p100 = await create_product(admin, "小礼盒", 100)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    order_a = await purchase(a, p100)  # A: 130
    order_b = await purchase(b, p100)  # 65 → A (remaining 65); B: 130

    refunded = (await admin(REFUND, id=order_a["id"]))["refundOrder"]
    assert refunded["status"] == "REFUNDED"
    assert (await order_of(a, order_a["id"]))["status"] == "REFUNDED"
    entry_a = await only_entry(a)
    assert_ended(entry_a, "CANCELLED", 65)
    assert paid_to(entry_a) == [(order_b["id"], 65)]
    assert (await wallet(a))["balanceFen"] == 65  # recorded, not clawed back
    entry_b = await only_entry(b)
    assert (entry_b["position"], entry_b["amountAheadFen"]) == (1, 0)

    order_c = await purchase(c, p100)  # C's 65 → B: A left the queue
    assert_ended(await only_entry(a), "CANCELLED", 65)
    entry_b = await only_entry(b)
    assert_waiting(entry_b, 65, 65)
    assert paid_to(entry_b) == [(order_c["id"], 65)]


async def test_a_refund_does_not_reverse_the_refunded_lines_contribution(anonymous, admin):
    """§11: the refunded order's contribution stands: the entries it paid keep their payouts."""
    p100 = await create_product(admin, "小礼盒", 100)
    p300 = await create_product(admin, "大礼盒", 300)
    a, b, c = [await anonymous.login(code) for code in ("a", "b", "c")]
    await purchase(a, p100)  # A: 130
    await purchase(b, p100)  # 65 → A; B: 130
    order_c = await purchase(c, p300)  # 195: 65 → A (COMPLETED), 130 → B (COMPLETED); C: 390

    await admin(REFUND, id=order_c["id"])
    entry_a, entry_b = await only_entry(a), await only_entry(b)
    assert_ended(entry_a, "COMPLETED", 130)
    assert paid_to(entry_a)[1] == (order_c["id"], 65)
    assert_ended(entry_b, "COMPLETED", 130)
    assert paid_to(entry_b) == [(order_c["id"], 130)]
    assert (await wallet(a))["balanceFen"] == 130
    assert (await wallet(b))["balanceFen"] == 130
    assert_ended(await only_entry(c), "CANCELLED", 0)


async def test_refunding_a_pending_or_refunded_order_is_a_conflict(anonymous, admin):
    """§11/§4: refunding an unpaid or an already refunded order is a CONFLICT, changing nothing."""
    p100 = await create_product(admin, "小礼盒", 100)
    a = await anonymous.login("a")
    pending = await buy(a, p100)
    assert (await admin.error(REFUND, id=pending["id"])).code == "CONFLICT"
    assert (await order_of(a, pending["id"]))["status"] == "PENDING_PAYMENT"

    await pay_and_settle(a, pending)
    assert_waiting(await only_entry(a), 0, 130)
    await admin(REFUND, id=pending["id"])
    assert_ended(await only_entry(a), "CANCELLED", 0)
    assert (await admin.error(REFUND, id=pending["id"])).code == "CONFLICT"
    assert (await order_of(a, pending["id"]))["status"] == "REFUNDED"
    assert_ended(await only_entry(a), "CANCELLED", 0)
    assert (await wallet(a))["balanceFen"] == 0
