"""SPEC §5 (reward ratio resolution) and §8 (the lottery), through GraphQL and the fake WeChat.

Every amount is worked out by hand; `apply(amount, bp) = amount * bp // 10000`. Unless a test says
otherwise the plugin runs extraction 65% (6500 bp) and default reward 130% (13000 bp), settleOn
PAID, and lines are paid 100 fen, so an entry's entitlement is its ratio / 100 (13000 bp → 130)
and every line contributes apply(100, 6500) = 65 to the entries ahead of it.

In the chain tests the ratios grow along the chain (the first rule has the lowest ratio): an
implementation that took the highest ratio of all rules set, instead of the first rule set, fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
  updateRebateSettings(input: $input) { enabled settleOn defaultRewardRatioBp } }"""
UPSERT_PRODUCT = """mutation($input: ProductInput!) { upsertProduct(input: $input) { id } }"""
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
REFUND = "mutation($id: ID!) { refundOrder(orderId: $id) { id status } }"
EXCHANGE = """mutation($id: ID!, $target: ExchangeTarget!) {
  exchangeEntry(entryId: $id, target: $target) { id status } }"""
DRAW = "mutation($id: ID!) { drawLottery(entryId: $id) { " + ENTRY_FIELDS + " } }"
ENTRY = "query($id: ID!) { entry(id: $id) { " + ENTRY_FIELDS + " } }"
MEMBER_LEVEL = "mutation($input: MemberLevelInput!) { upsertMemberLevel(input: $input) { id } }"
SET_LEVEL = """mutation($user: ID!, $level: ID) {
  setUserLevels(userId: $user, memberLevelId: $level) { id memberLevel { id } } }"""
RESET_NOW = "mutation { resetQueuesNow }"
WALLET = "{ wallet { balanceFen points loveValue loveValueFrozen } }"

BEIJING = ZoneInfo("Asia/Shanghai")

# ----------------------------------------------------------------------------------------------
# Helpers: all through the API and the fake WeChat.


async def settings(admin: Api, **change: Any) -> None:
    """The plugin's base settings: extraction 65%, default reward 130%, plus `change`."""
    base = {"extractionRatioBp": 6500, "defaultRewardRatioBp": 13000, "settleOn": "PAID"}
    await admin(UPDATE_SETTINGS, input={**base, **change})


async def product(
    admin: Api, name: str, price_fen: int = 100, store_id: str | None = None, **rebate: Any
) -> str:
    """A product whose rule is enabled unless `enabled=False`, with the given rule fields."""
    data: dict[str, Any] = {
        "name": name,
        "priceFen": price_fen,
        "rebate": {"enabled": True, **rebate},
    }
    if store_id is not None:
        data["storeId"] = store_id
    return (await admin(UPSERT_PRODUCT, input=data))["upsertProduct"]["id"]


async def store(
    admin: Api, name: str, goods: dict[str, Any] | None, cashier: dict[str, Any] | None
) -> str:
    """A store; a rule given as a dict is enabled with those fields, None means disabled."""
    data = {
        "name": name,
        "goodsRebate": {"enabled": True, **goods} if goods is not None else {"enabled": False},
        "cashierRebate": (
            {"enabled": True, **cashier} if cashier is not None else {"enabled": False}
        ),
    }
    return (await admin(UPSERT_STORE, input=data))["upsertStore"]["id"]


async def order(consumer: Api, product_id: str, **extra: Any) -> dict[str, Any]:
    data = {"lines": [{"productId": product_id, "quantity": 1}], **extra}
    return (await consumer(CREATE_ORDER, input=data))["createOrder"]


async def bought(consumer: Api, product_id: str, **extra: Any) -> dict[str, Any]:
    """Buy one of `product_id`, pay, and wait for the settlement (settleOn PAID)."""
    return await pay_and_settle(consumer, await order(consumer, product_id, **extra))


async def paid_at_cashier(
    consumer: Api, store_id: str, amount_fen: int, time_end: str | None = None
) -> dict[str, Any]:
    """收银台买单: complete when paid, so it settles (and counts as completed) at once."""
    data = {"storeId": store_id, "amountFen": amount_fen}
    created = (await consumer(CASHIER_ORDER, input=data))["createCashierOrder"]
    extra = {"timeEnd": time_end} if time_end else {}
    reply = await wechat_pays(consumer.http, created["outTradeNo"], **extra)
    assert "SUCCESS" in reply["reply"], reply
    return await wait_settled(consumer, created["id"])


async def complete(admin: Api, order_id: str) -> dict[str, Any]:
    assert (await admin(COMPLETE, id=order_id))["completeOrder"]["status"] == "COMPLETED"
    return await wait_settled(admin, order_id)


async def spent(admin: Api, consumer: Api, product_id: str) -> dict[str, Any]:
    """An earlier order of `product_id`: bought, paid, settled, then completed by the operator."""
    settled = await bought(consumer, product_id)
    return await complete(admin, settled["id"])


async def member_level(admin: Api, name: str, rank: int = 1) -> str:
    return (await admin(MEMBER_LEVEL, input={"name": name, "rank": rank}))["upsertMemberLevel"][
        "id"
    ]


async def set_level(admin: Api, user_id: str, level_id: str | None) -> None:
    await admin(SET_LEVEL, user=user_id, level=level_id)


async def entry_for(consumer: Api, order_id: str) -> dict[str, Any]:
    """The consumer's one entry of `order_id`."""
    [entry] = [e for e in await my_entries(consumer) if e["orderId"] == order_id]
    return entry


async def entry_by_id(api: Api, entry_id: str) -> dict[str, Any]:
    return (await api(ENTRY, id=entry_id))["entry"]


async def draw(consumer: Api, entry_id: str) -> dict[str, Any]:
    return (await consumer(DRAW, id=entry_id))["drawLottery"]


async def wallet(consumer: Api) -> dict[str, Any]:
    return (await consumer(WALLET))["wallet"]


def ratio_of(entry: dict[str, Any]) -> tuple[int, str, int, bool]:
    """(ratioBp, ratioSource, entitlementFen, lotteryAvailable) of an entry."""
    return (
        entry["ratioBp"],
        entry["ratioSource"],
        entry["entitlementFen"],
        entry["lotteryAvailable"],
    )


def money(entry: dict[str, Any]) -> tuple[str, int, int, int]:
    """(status, entitlement, rewarded, remaining) of an entry."""
    return (entry["status"], entry["entitlementFen"], entry["rewardedFen"], entry["remainingFen"])


def fixed(*ratios: int, weights: list[int] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": "FIXED", "ratiosBp": list(ratios)}
    if weights is not None:
        config["weights"] = weights
    return config


def beijing_time_end(ago: timedelta) -> str:
    """`timeEnd` (yyyyMMddHHmmss, Beijing time) for a payment made `ago` before now."""
    return (datetime.now(BEIJING) - ago).strftime("%Y%m%d%H%M%S")


# ----------------------------------------------------------------------------------------------
# §5 The three chains: each step wins over every step after it (the next one is always set too).
#
# Each case: (rule, entry's ratioBp, ratioSource, drawn ratio for a lottery step or None).

MALL_CHAIN = [
    ("product member level", 11000, "MEMBER_LEVEL", None),
    ("plugin member level", 12000, "MEMBER_LEVEL", None),
    ("product cumulative", 13000, "CUMULATIVE", None),
    # A lottery entry starts with the rest of the chain's fixed ratio: product independent 16000.
    ("product lottery", 16000, "LOTTERY_DEFAULT", 14000),
    ("plugin lottery", 16000, "LOTTERY_DEFAULT", 15000),
    ("product independent", 16000, "INDEPENDENT", None),
    ("plugin default", 17000, "DEFAULT", None),
]


@pytest.mark.parametrize("mall_queue", [True, False], ids=["mall queue", "product queue"])
@pytest.mark.parametrize("step", range(len(MALL_CHAIN)), ids=[c[0] for c in MALL_CHAIN])
async def test_mall_chain_each_rule_wins_over_the_rest(anonymous, admin, step, mall_queue):
    """§5 mall / product queues: product member-level → plugin member-level → product cumulative
    → product lottery → plugin lottery → product independent → plugin default."""
    _, ratio_bp, source, drawn_bp = MALL_CHAIN[step]
    on = {name for name, *_ in MALL_CHAIN[step:]}
    gold = await member_level(admin, "金卡")
    buyer = await anonymous.login("buyer")
    await set_level(admin, buyer.user_id, gold)
    # Earlier spend: one completed 100-fen mall order (its product's rule is off: no queue).
    await spent(admin, buyer, await product(admin, "热身", 100, enabled=False))

    await settings(
        admin,
        mallQueue=mall_queue,
        defaultRewardRatioBp=17000,
        memberLevelRatios=(
            [{"levelId": gold, "ratioBp": 12000}] if "plugin member level" in on else []
        ),
        lottery=fixed(15000) if "plugin lottery" in on else None,
    )
    rebate: dict[str, Any] = {}
    if "product member level" in on:
        rebate["memberLevelRatios"] = [{"levelId": gold, "ratioBp": 11000}]
    if "product cumulative" in on:
        # Reached: the buyer's completed mall spend in the last day is 100 ≥ 100.
        rebate["cumulativeTiers"] = [{"days": 1, "minAmountFen": 100, "ratioBp": 13000}]
    if "product lottery" in on:
        rebate["lottery"] = fixed(14000)
    if "product independent" in on:
        rebate["ratioBp"] = 16000
    item = await product(admin, "礼盒", 100, **rebate)

    settled = await bought(buyer, item)
    assert settled["lines"][0]["queueKey"] == ("mall" if mall_queue else f"product:{item}")
    entry = await entry_for(buyer, settled["id"])
    # Paid 100 at ratio r: entitlement 100 × r / 10000.
    assert ratio_of(entry) == (ratio_bp, source, ratio_bp // 100, drawn_bp is not None)
    if drawn_bp is not None:
        # The draw uses the lottery of the scope that won: product 14000, plugin 15000.
        after = await draw(buyer, entry["id"])
        assert ratio_of(after) == (drawn_bp, "LOTTERY_DRAWN", drawn_bp // 100, False)


CASHIER_CHAIN = [
    ("cashier member level", 11000, "MEMBER_LEVEL", None),
    ("plugin member level", 12000, "MEMBER_LEVEL", None),
    ("cashier cumulative", 13000, "CUMULATIVE", None),
    # A lottery entry starts with the cashier's default 16000 (source INDEPENDENT when alone).
    ("cashier lottery", 16000, "LOTTERY_DEFAULT", 14000),
    ("plugin lottery", 16000, "LOTTERY_DEFAULT", 15000),
    ("cashier default", 16000, "INDEPENDENT", None),
    ("plugin default", 17000, "DEFAULT", None),
]


@pytest.mark.parametrize("step", range(len(CASHIER_CHAIN)), ids=[c[0] for c in CASHIER_CHAIN])
async def test_cashier_chain_each_rule_wins_over_the_rest(anonymous, admin, step):
    """§5 cashier queues: cashier member-level → plugin member-level → cashier cumulative →
    cashier lottery → plugin lottery → cashier default → plugin default."""
    _, ratio_bp, source, drawn_bp = CASHIER_CHAIN[step]
    on = {name for name, *_ in CASHIER_CHAIN[step:]}
    gold = await member_level(admin, "金卡")
    buyer = await anonymous.login("buyer")
    await set_level(admin, buyer.user_id, gold)
    await settings(
        admin,
        defaultRewardRatioBp=17000,
        memberLevelRatios=(
            [{"levelId": gold, "ratioBp": 12000}] if "plugin member level" in on else []
        ),
        lottery=fixed(15000) if "plugin lottery" in on else None,
    )
    cashier: dict[str, Any] = {}
    if "cashier member level" in on:
        cashier["memberLevelRatios"] = [{"levelId": gold, "ratioBp": 11000}]
    if "cashier cumulative" in on:
        cashier["cumulativeTiers"] = [{"days": 1, "minAmountFen": 100, "ratioBp": 13000}]
    if "cashier lottery" in on:
        cashier["lottery"] = fixed(14000)
    if "cashier default" in on:
        cashier["ratioBp"] = 16000
    # The store's goods rule is off: its goods orders join no queue, but they are spend.
    shop = await store(admin, "小店", goods=None, cashier=cashier)
    # Earlier spend at this store: one completed online goods order of 100 (counts for cashiers).
    await spent(admin, buyer, await product(admin, "店内热身", 100, store_id=shop))

    settled = await paid_at_cashier(buyer, shop, 100)
    assert settled["lines"][0]["queueKey"] == f"cashier:{shop}"
    entry = await entry_for(buyer, settled["id"])
    assert ratio_of(entry) == (ratio_bp, source, ratio_bp // 100, drawn_bp is not None)
    if drawn_bp is not None:
        after = await draw(buyer, entry["id"])
        assert ratio_of(after) == (drawn_bp, "LOTTERY_DRAWN", drawn_bp // 100, False)


STORE_CHAIN = [
    ("store-product member level", 11000, "MEMBER_LEVEL", None),
    ("store member level", 11500, "MEMBER_LEVEL", None),
    ("plugin member level", 12000, "MEMBER_LEVEL", None),
    ("store-product cumulative", 12500, "CUMULATIVE", None),
    ("store cumulative", 13000, "CUMULATIVE", None),
    # A lottery entry starts with the store product's default 15000.
    ("store-product lottery", 15000, "LOTTERY_DEFAULT", 13500),
    ("store lottery", 15000, "LOTTERY_DEFAULT", 14000),
    ("plugin lottery", 15000, "LOTTERY_DEFAULT", 14500),
    ("store-product default", 15000, "INDEPENDENT", None),
    ("store default", 15500, "INDEPENDENT", None),
    ("plugin default", 16000, "DEFAULT", None),
]


@pytest.mark.parametrize("step", range(len(STORE_CHAIN)), ids=[c[0] for c in STORE_CHAIN])
async def test_store_goods_chain_each_rule_wins_over_the_rest(anonymous, admin, step):
    """§5 store-goods queues: store-product member-level → store member-level → plugin
    member-level → store-product cumulative → store cumulative → store-product lottery → store
    lottery → plugin lottery → store-product default → store default → plugin default."""
    _, ratio_bp, source, drawn_bp = STORE_CHAIN[step]
    on = {name for name, *_ in STORE_CHAIN[step:]}
    gold = await member_level(admin, "金卡")
    buyer = await anonymous.login("buyer")
    await set_level(admin, buyer.user_id, gold)
    await settings(
        admin,
        defaultRewardRatioBp=16000,
        memberLevelRatios=(
            [{"levelId": gold, "ratioBp": 12000}] if "plugin member level" in on else []
        ),
        lottery=fixed(14500) if "plugin lottery" in on else None,
    )
    goods: dict[str, Any] = {}
    item_rule: dict[str, Any] = {}
    if "store-product member level" in on:
        item_rule["memberLevelRatios"] = [{"levelId": gold, "ratioBp": 11000}]
    if "store member level" in on:
        goods["memberLevelRatios"] = [{"levelId": gold, "ratioBp": 11500}]
    # Both reached: the buyer spent 100 at this store today. The store product's tier has the
    # lower ratio and still wins: the more specific scope, not the highest ratio.
    if "store-product cumulative" in on:
        item_rule["cumulativeTiers"] = [{"days": 1, "minAmountFen": 100, "ratioBp": 12500}]
    if "store cumulative" in on:
        goods["cumulativeTiers"] = [{"days": 1, "minAmountFen": 100, "ratioBp": 13000}]
    if "store-product lottery" in on:
        item_rule["lottery"] = fixed(13500)
    if "store lottery" in on:
        goods["lottery"] = fixed(14000)
    if "store-product default" in on:
        item_rule["ratioBp"] = 15000
    if "store default" in on:
        goods["ratioBp"] = 15500
    shop = await store(admin, "小店", goods=goods, cashier=None)
    item = await product(admin, "店内礼盒", 100, store_id=shop, **item_rule)
    # Earlier spend at this store: one completed goods order of 100 (its product's rule is off:
    # no queue). Cashier payments counting is tested on its own below.
    await spent(admin, buyer, await product(admin, "店内热身", 100, store_id=shop, enabled=False))

    settled = await bought(buyer, item)
    assert settled["lines"][0]["queueKey"] == f"store:{shop}"
    entry = await entry_for(buyer, settled["id"])
    assert ratio_of(entry) == (ratio_bp, source, ratio_bp // 100, drawn_bp is not None)
    if drawn_bp is not None:
        after = await draw(buyer, entry["id"])
        assert ratio_of(after) == (drawn_bp, "LOTTERY_DRAWN", drawn_bp // 100, False)


# ----------------------------------------------------------------------------------------------
# §5 Member level (会员等级)


async def test_member_level_is_looked_up_for_the_buyers_own_level(anonymous, admin):
    """§5: the map is looked up for the buyer's level; a level not in the map, or no level at
    all, gives no ratio and the chain goes on (here to the product's independent ratio)."""
    await settings(admin)
    silver = await member_level(admin, "银卡", 1)
    gold = await member_level(admin, "金卡", 2)
    item = await product(
        admin, "礼盒", 100, ratioBp=16000, memberLevelRatios=[{"levelId": gold, "ratioBp": 20000}]
    )
    golden, silvery, plain = [await anonymous.login(code) for code in ("g", "s", "p")]
    await set_level(admin, golden.user_id, gold)
    await set_level(admin, silvery.user_id, silver)

    # Gold is in the map: 100 × 200% = 200.
    entry = await entry_for(golden, (await bought(golden, item))["id"])
    assert ratio_of(entry) == (20000, "MEMBER_LEVEL", 200, False)
    # Silver is not: the product's independent 160%.
    entry = await entry_for(silvery, (await bought(silvery, item))["id"])
    assert ratio_of(entry) == (16000, "INDEPENDENT", 160, False)
    # No level: the same.
    entry = await entry_for(plain, (await bought(plain, item))["id"])
    assert ratio_of(entry) == (16000, "INDEPENDENT", 160, False)


async def test_member_level_is_read_at_the_settlement_event(server, anonymous, admin):
    """§5: the buyer's level at the settlement event counts, not at payment (settleOn
    COMPLETED: setUserLevels between payment and completion)."""
    silver = await member_level(admin, "银卡", 1)
    gold = await member_level(admin, "金卡", 2)
    await settings(
        admin,
        settleOn="COMPLETED",
        memberLevelRatios=[
            {"levelId": silver, "ratioBp": 11000},
            {"levelId": gold, "ratioBp": 15000},
        ],
    )
    item = await product(admin, "礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    await set_level(admin, a.user_id, silver)
    await set_level(admin, b.user_id, gold)

    order_a, order_b = await order(a, item), await order(b, item)
    for consumer, created in ((a, order_a), (b, order_b)):
        assert "SUCCESS" in (await wechat_pays(consumer.http, created["outTradeNo"]))["reply"]
    await server.services.jobs.drain()
    assert (await order_of(a, order_a["id"]))["settled"] is False
    assert await my_entries(a) == []

    # Paid as silver, gold when the order completes: gold's 150% → 100 × 150% = 150.
    await set_level(admin, a.user_id, gold)
    # Paid as gold, no level any more at completion: the plugin default 130% → 130.
    await set_level(admin, b.user_id, None)

    await complete(admin, order_a["id"])
    entry_a = await entry_for(a, order_a["id"])
    assert ratio_of(entry_a) == (15000, "MEMBER_LEVEL", 150, False)
    await complete(admin, order_b["id"])
    entry_b = await entry_for(b, order_b["id"])
    assert ratio_of(entry_b) == (13000, "DEFAULT", 130, False)
    # B's contribution 100 × 65% = 65 went to A, ahead in the queue.
    assert money(await entry_for(a, order_a["id"])) == ("WAITING", 150, 65, 85)


# ----------------------------------------------------------------------------------------------
# §5 Cumulative tiers (累计金额奖励)


async def test_a_tier_is_reached_when_the_sum_equals_its_minimum(anonymous, admin):
    """§5: a tier is reached at sum ≥ minAmountFen; an unreached tier's ratio is not used."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    await spent(admin, buyer, await product(admin, "热身", 100, enabled=False))
    item = await product(
        admin,
        "礼盒",
        100,
        cumulativeTiers=[
            {"days": 1, "minAmountFen": 100, "ratioBp": 15000},
            {"days": 1, "minAmountFen": 101, "ratioBp": 20000},
        ],
    )
    # Sum 100: the 100 tier is reached (100 ≥ 100), the 101 tier is not → 150% → 150.
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    assert ratio_of(entry) == (15000, "CUMULATIVE", 150, False)


async def test_among_reached_tiers_the_highest_ratio_wins(anonymous, admin):
    """§5: among the tiers reached the highest ratio wins (not the first listed, not the highest
    threshold)."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    await spent(admin, buyer, await product(admin, "热身", 100, enabled=False))
    item = await product(
        admin,
        "礼盒",
        100,
        cumulativeTiers=[
            {"days": 1, "minAmountFen": 100, "ratioBp": 17000},
            {"days": 1, "minAmountFen": 50, "ratioBp": 19000},
            {"days": 1, "minAmountFen": 1000, "ratioBp": 25000},
        ],
    )
    # Sum 100 reaches the 50 (190%) and the 100 (170%) tiers, not the 1000 one → 190% → 190.
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    assert ratio_of(entry) == (19000, "CUMULATIVE", 190, False)


async def test_no_tier_reached_the_chain_goes_on(anonymous, admin):
    """§5: if no tier is reached the rule is unset and the chain goes on (to the lottery)."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    await spent(admin, buyer, await product(admin, "热身", 100, enabled=False))
    item = await product(
        admin,
        "礼盒",
        100,
        ratioBp=16000,
        cumulativeTiers=[{"days": 1, "minAmountFen": 101, "ratioBp": 19000}],
        lottery=fixed(5000),
    )
    # Sum 100 < 101: not reached → the product lottery, starting from its independent 160%.
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    assert ratio_of(entry) == (16000, "LOTTERY_DEFAULT", 160, True)


async def test_only_completed_orders_count(server, anonymous, admin):
    """§5: the sum is of the buyer's completed orders; a paid, not completed order does not
    count until it completes."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    earlier = await bought(buyer, await product(admin, "热身", 500, enabled=False))
    assert earlier["status"] == "PAID"
    item = await product(
        admin, "礼盒", 100, cumulativeTiers=[{"days": 1, "minAmountFen": 100, "ratioBp": 19000}]
    )

    # The 500 is paid, not completed: sum 0 < 100 → plugin default 130%.
    first = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, first["id"])) == (13000, "DEFAULT", 130, False)

    # Completed now: sum 500 ≥ 100 → 190%. (`first` is still only paid: it does not count.)
    await complete(admin, earlier["id"])
    second = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, second["id"])) == (19000, "CUMULATIVE", 190, False)


async def test_the_order_being_settled_does_not_count_itself(server, anonymous, admin):
    """§5: the order being settled does not count itself (settleOn COMPLETED: it is completed at
    its own settlement event); once settled and completed, it counts for the next."""
    await settings(admin, settleOn="COMPLETED")
    item = await product(
        admin, "礼盒", 100, cumulativeTiers=[{"days": 1, "minAmountFen": 100, "ratioBp": 19000}]
    )
    buyer = await anonymous.login("buyer")

    first = await order(buyer, item)
    await wechat_pays(buyer.http, first["outTradeNo"])
    await server.services.jobs.drain()
    await complete(admin, first["id"])
    # Its own 100 does not count: sum 0 → plugin default 130%.
    assert ratio_of(await entry_for(buyer, first["id"])) == (13000, "DEFAULT", 130, False)

    second = await order(buyer, item)
    await wechat_pays(buyer.http, second["outTradeNo"])
    await server.services.jobs.drain()
    await complete(admin, second["id"])
    # The first order (completed, 100) counts now: 100 ≥ 100 → 190%.
    assert ratio_of(await entry_for(buyer, second["id"])) == (19000, "CUMULATIVE", 190, False)


async def test_a_cashier_payment_does_not_count_itself(anonymous, admin):
    """§5: a cashier payment is complete when paid, yet it does not count in its own sum."""
    await settings(admin)
    shop = await store(
        admin,
        "小店",
        goods=None,
        cashier={"cumulativeTiers": [{"days": 1, "minAmountFen": 100, "ratioBp": 19000}]},
    )
    buyer = await anonymous.login("buyer")
    first = await paid_at_cashier(buyer, shop, 100)
    assert first["status"] == "COMPLETED"
    # Sum without itself 0 → plugin default 130%.
    assert ratio_of(await entry_for(buyer, first["id"])) == (13000, "DEFAULT", 130, False)
    second = await paid_at_cashier(buyer, shop, 100)
    # The first payment counts: 100 ≥ 100 → 190%.
    assert ratio_of(await entry_for(buyer, second["id"])) == (19000, "CUMULATIVE", 190, False)


async def test_a_refunded_order_no_longer_counts(anonymous, admin):
    """§5: the sum is of unrefunded orders: refunding a completed order takes it out."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    earlier = await spent(admin, buyer, await product(admin, "热身", 100, enabled=False))
    item = await product(
        admin, "礼盒", 100, cumulativeTiers=[{"days": 1, "minAmountFen": 100, "ratioBp": 19000}]
    )
    first = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, first["id"])) == (19000, "CUMULATIVE", 190, False)

    assert (await admin(REFUND, id=earlier["id"]))["refundOrder"]["status"] == "REFUNDED"
    # Sum 0 now → plugin default 130%.
    second = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, second["id"])) == (13000, "DEFAULT", 130, False)


async def test_mall_queues_count_the_cash_paid_for_mall_orders(anonymous, admin):
    """§5: mall queues sum the cash paid for mall goods orders, not the amount before points."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    # Points, the buyer's way: an entry of 100 × 130% = 130 exchanged at 100% → 130 points.
    first = await bought(buyer, await product(admin, "积分来源", 100))
    await buyer(EXCHANGE, id=(await entry_for(buyer, first["id"]))["id"], target="POINTS")
    assert (await wallet(buyer))["points"] == 130
    # A 200-fen mall order paid with 100 points and 100 cash, then completed.
    warm = await product(admin, "热身", 200, enabled=False)
    earlier = await bought(buyer, warm, pointsToUse=100)
    assert (earlier["totalFen"], earlier["deductionFen"], earlier["payableFen"]) == (200, 100, 100)
    await complete(admin, earlier["id"])

    item = await product(
        admin,
        "礼盒",
        100,
        cumulativeTiers=[
            {"days": 1, "minAmountFen": 100, "ratioBp": 15000},
            {"days": 1, "minAmountFen": 101, "ratioBp": 19000},
        ],
    )
    # Cash 100 (not 200): the 100 tier is reached, the 101 tier is not → 150%.
    settled = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, settled["id"])) == (15000, "CUMULATIVE", 150, False)


async def test_mall_queues_do_not_count_store_or_cashier_orders(anonymous, admin):
    """§5: mall queues count mall goods orders only, not a store's goods or cashier orders."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    shop = await store(admin, "小店", goods=None, cashier=None)
    await paid_at_cashier(buyer, shop, 100)
    await spent(admin, buyer, await product(admin, "店内商品", 100, store_id=shop))
    item = await product(
        admin, "礼盒", 100, cumulativeTiers=[{"days": 1, "minAmountFen": 100, "ratioBp": 19000}]
    )
    # 200 completed at the store, 0 in the mall: not reached → plugin default 130%.
    settled = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, settled["id"])) == (13000, "DEFAULT", 130, False)


async def test_store_queues_count_that_stores_cashier_and_goods_orders(anonymous, admin):
    """§5: store queues sum that store's cashier and online goods orders; mall orders and other
    stores' orders do not count."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    shop = await store(
        admin,
        "本店",
        goods={"cumulativeTiers": [{"days": 1, "minAmountFen": 200, "ratioBp": 19000}]},
        cashier=None,
    )
    other = await store(admin, "别家", goods=None, cashier=None)
    item = await product(admin, "店内礼盒", 100, store_id=shop)
    # Elsewhere: a completed mall order of 100, a cashier payment of 100 at another store.
    await spent(admin, buyer, await product(admin, "商城", 100, enabled=False))
    await paid_at_cashier(buyer, other, 100)
    first = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, first["id"])) == (13000, "DEFAULT", 130, False)

    # At this store: a cashier payment of 100 and a completed goods order of 100 (its product's
    # rule is off: no queue) → 200 ≥ 200 → 190%. (`first` is paid, not completed.)
    await paid_at_cashier(buyer, shop, 100)
    await spent(admin, buyer, await product(admin, "店内热身", 100, store_id=shop, enabled=False))
    second = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, second["id"])) == (19000, "CUMULATIVE", 190, False)


async def test_a_tier_counts_only_its_last_days(anonymous, admin):
    """§5: a tier sums orders completed in the last `days` × 24 h before the settlement."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    shop = await store(
        admin,
        "小店",
        goods={
            "cumulativeTiers": [
                {"days": 2, "minAmountFen": 100, "ratioBp": 19000},
                {"days": 4, "minAmountFen": 100, "ratioBp": 17000},
            ]
        },
        cashier=None,
    )
    item = await product(admin, "店内礼盒", 100, store_id=shop)
    # A cashier payment is complete when paid: WeChat reports it paid 3 days ago.
    earlier = await paid_at_cashier(buyer, shop, 100, time_end=beijing_time_end(timedelta(days=3)))
    assert earlier["status"] == "COMPLETED"
    # 3 days ago is outside the 2-day tier and inside the 4-day one → 170%.
    settled = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, settled["id"])) == (17000, "CUMULATIVE", 170, False)


async def test_a_tiers_window_is_days_times_24_hours(anonymous, admin):
    """§5: the window is settlement − days × 24 h ≤ t ≤ settlement, to the hour, not whole days."""
    await settings(admin)
    buyer = await anonymous.login("buyer")
    shop = await store(
        admin,
        "小店",
        goods={
            "cumulativeTiers": [
                {"days": 2, "minAmountFen": 100, "ratioBp": 19000},
                {"days": 3, "minAmountFen": 100, "ratioBp": 17000},
            ]
        },
        cashier=None,
    )
    item = await product(admin, "店内礼盒", 100, store_id=shop)
    # Paid (so completed) 52 hours ago: outside 2 × 24 = 48 h, inside 3 × 24 = 72 h → 170%.
    await paid_at_cashier(buyer, shop, 100, time_end=beijing_time_end(timedelta(hours=52)))
    settled = await bought(buyer, item)
    assert ratio_of(await entry_for(buyer, settled["id"])) == (17000, "CUMULATIVE", 170, False)


# ----------------------------------------------------------------------------------------------
# §5 Lottery: the entry starts with the rest of the chain's fixed ratio


async def test_a_lottery_entry_starts_with_the_store_default_when_the_product_sets_none(
    anonymous, admin
):
    """§5: a lottery entry starts with the fixed ratio the rest of the chain gives (store-product
    default unset → store default), source LOTTERY_DEFAULT, lotteryAvailable true."""
    await settings(admin, lottery=fixed(5000))
    shop = await store(admin, "小店", goods={"ratioBp": 15500}, cashier=None)
    item = await product(admin, "店内礼盒", 100, store_id=shop)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    # 100 × 155% = 155, waiting, nothing received.
    assert ratio_of(entry) == (15500, "LOTTERY_DEFAULT", 155, True)
    assert money(entry) == ("WAITING", 155, 0, 155)


# ----------------------------------------------------------------------------------------------
# §8 The draw


async def test_fixed_lottery_with_weights_draws_the_weighted_ratio(anonymous, admin):
    """§8: FIXED with weights [0, 1] always draws the second ratio; the drawn ratio replaces the
    ratio, entitlement = apply(paid, drawn), source LOTTERY_DRAWN; payouts follow it."""
    await settings(admin, lottery=fixed(1000, 5000, weights=[0, 1]))
    item = await product(admin, "礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")

    entry_a = await entry_for(a, (await bought(a, item))["id"])
    # Before the draw: the plugin default 130% → 130.
    assert ratio_of(entry_a) == (13000, "LOTTERY_DEFAULT", 130, True)
    drawn = await draw(a, entry_a["id"])
    # 100 × 50% = 50.
    assert ratio_of(drawn) == (5000, "LOTTERY_DRAWN", 50, False)
    assert money(drawn) == ("WAITING", 50, 0, 50)
    assert ratio_of(await entry_by_id(a, entry_a["id"])) == (5000, "LOTTERY_DRAWN", 50, False)

    # B's contribution 100 × 65% = 65: A takes its new remaining 50 and completes; 15 is returned.
    order_b = await bought(b, item)
    assert money(await entry_by_id(a, entry_a["id"])) == ("COMPLETED", 50, 50, 0)
    assert (await wallet(a))["balanceFen"] == 50
    entry_b = await entry_for(b, order_b["id"])
    assert (entry_b["position"], entry_b["amountAheadFen"]) == (1, 0)


async def test_the_article_lottery_ratios_10_20_50_draw_50(anonymous, admin):
    """§8 article example: ratios 10%, 20%, 50% → a draw of 50%: 168.00 × 50% = 84.00."""
    await settings(admin, lottery=fixed(1000, 2000, 5000, weights=[0, 0, 1]))
    item = await product(admin, "精选礼盒", 16800)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    # Before: 16800 × 130% = 21840.
    assert ratio_of(entry) == (13000, "LOTTERY_DEFAULT", 21840, True)
    drawn = await draw(buyer, entry["id"])
    assert ratio_of(drawn) == (5000, "LOTTERY_DRAWN", 8400, False)
    assert money(drawn) == ("WAITING", 8400, 0, 8400)


async def test_fixed_lottery_without_weights_draws_one_of_its_ratios(anonymous, admin):
    """§8: FIXED without weights draws one of the listed ratios; entitlement rounds down."""
    await settings(admin, lottery=fixed(1000, 2000, 5000))
    item = await product(admin, "礼盒", 333)
    for code in ("a", "b", "c", "d"):
        buyer = await anonymous.login(code)
        entry = await entry_for(buyer, (await bought(buyer, item))["id"])
        drawn = await draw(buyer, entry["id"])
        # 333 × 10% = 33.3 → 33; × 20% = 66.6 → 66; × 50% = 166.5 → 166.
        assert drawn["ratioBp"] in (1000, 2000, 5000)
        assert drawn["entitlementFen"] == {1000: 33, 2000: 66, 5000: 166}[drawn["ratioBp"]]
        assert (drawn["ratioSource"], drawn["lotteryAvailable"]) == ("LOTTERY_DRAWN", False)


async def test_range_lottery_with_equal_bounds_draws_that_ratio(anonymous, admin):
    """§8: RANGE draws a whole bp in [minBp, maxBp]; minBp == maxBp draws exactly it."""
    await settings(admin, lottery={"mode": "RANGE", "minBp": 12345, "maxBp": 12345})
    item = await product(admin, "礼盒", 100)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    drawn = await draw(buyer, entry["id"])
    # 100 × 123.45% = 123.45 → 123.
    assert ratio_of(drawn) == (12345, "LOTTERY_DRAWN", 123, False)
    assert money(drawn) == ("WAITING", 123, 0, 123)


async def test_range_lottery_draws_within_the_range(anonymous, admin):
    """§8: a wide RANGE draws a whole bp between minBp and maxBp inclusive."""
    await settings(admin, lottery={"mode": "RANGE", "minBp": 1000, "maxBp": 30000})
    # Paid 10000: entitlement = 10000 × drawn / 10000 = drawn, exactly.
    item = await product(admin, "礼盒", 10000)
    for code in ("a", "b", "c"):
        buyer = await anonymous.login(code)
        entry = await entry_for(buyer, (await bought(buyer, item))["id"])
        drawn = await draw(buyer, entry["id"])
        assert 1000 <= drawn["ratioBp"] <= 30000
        assert drawn["entitlementFen"] == drawn["ratioBp"]
        assert (drawn["ratioSource"], drawn["lotteryAvailable"]) == ("LOTTERY_DRAWN", False)


@pytest.mark.parametrize(
    "config",
    [fixed(0), {"mode": "RANGE", "minBp": 99, "maxBp": 99}],
    ids=["drawn 0%", "drawn 0.99% of 100 rounds to 0"],
)
async def test_a_draw_that_makes_the_entitlement_zero_completes_the_entry(anonymous, admin, config):
    """§8 with §4: a drawn ratio giving entitlement 0 ends the entry COMPLETED; it takes nothing."""
    await settings(admin, lottery=config)
    item = await product(admin, "礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    entry_a = await entry_for(a, (await bought(a, item))["id"])
    drawn = await draw(a, entry_a["id"])
    # 100 × 0% = 0, or 100 × 0.99% = 0.99 → 0.
    assert money(drawn) == ("COMPLETED", 0, 0, 0)
    assert (drawn["ratioSource"], drawn["lotteryAvailable"], drawn["position"]) == (
        "LOTTERY_DRAWN",
        False,
        None,
    )

    # B's 65 finds nobody waiting ahead: returned, A gets nothing; B is first in line.
    order_b = await bought(b, item)
    assert money(await entry_by_id(a, entry_a["id"])) == ("COMPLETED", 0, 0, 0)
    assert (await wallet(a))["balanceFen"] == 0
    entry_b = await entry_for(b, order_b["id"])
    assert (entry_b["position"], entry_b["amountAheadFen"]) == (1, 0)


async def test_the_right_and_config_are_taken_at_the_settlement_event_not_at_payment(
    server, anonymous, admin
):
    """§8: under settleOn COMPLETED the lottery in force when the order completes gives the right
    and the configuration, even when none was set at payment."""
    await settings(admin, settleOn="COMPLETED")
    item = await product(admin, "礼盒", 100)
    buyer = await anonymous.login("buyer")
    created = await order(buyer, item)
    await wechat_pays(buyer.http, created["outTradeNo"])
    await server.services.jobs.drain()
    assert (await order_of(buyer, created["id"]))["settled"] is False

    # Set after the payment, before the completion: it counts.
    await settings(admin, settleOn="COMPLETED", lottery=fixed(1000, 5000, weights=[0, 1]))
    await complete(admin, created["id"])
    entry = await entry_for(buyer, created["id"])
    assert ratio_of(entry) == (13000, "LOTTERY_DEFAULT", 130, True)

    # Changed after the settlement: it does not.
    await settings(admin, settleOn="COMPLETED", lottery=fixed(1000, 5000, weights=[1, 0]))
    assert ratio_of(await draw(buyer, entry["id"])) == (5000, "LOTTERY_DRAWN", 50, False)


# ----------------------------------------------------------------------------------------------
# §8 When a draw is not allowed


async def test_drawing_twice_is_a_conflict(anonymous, admin):
    """§8: an entry may draw once: a second draw is CONFLICT and changes nothing."""
    await settings(admin, lottery=fixed(1000, 5000, weights=[0, 1]))
    item = await product(admin, "礼盒", 100)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    first = await draw(buyer, entry["id"])
    assert ratio_of(first) == (5000, "LOTTERY_DRAWN", 50, False)
    error = await buyer.error(DRAW, id=entry["id"])
    assert error.code == "CONFLICT"
    after = await entry_by_id(buyer, entry["id"])
    assert ratio_of(after) == (5000, "LOTTERY_DRAWN", 50, False)
    assert money(after) == ("WAITING", 50, 0, 50)


async def test_drawing_after_a_payout_is_a_conflict(anonymous, admin):
    """§8: the draw is only before any payout (正式奖励前): after one it is CONFLICT."""
    await settings(admin, lottery=fixed(1000, 5000, weights=[0, 1]))
    item = await product(admin, "礼盒", 100)
    a, b = await anonymous.login("a"), await anonymous.login("b")
    entry_a = await entry_for(a, (await bought(a, item))["id"])
    # B's 65 goes to A: 130 − 65 = 65 left; the right to draw is gone.
    await bought(b, item)
    paid = await entry_by_id(a, entry_a["id"])
    assert money(paid) == ("WAITING", 130, 65, 65)
    assert ratio_of(paid) == (13000, "LOTTERY_DEFAULT", 130, False)

    error = await a.error(DRAW, id=entry_a["id"])
    assert error.code == "CONFLICT"
    after = await entry_by_id(a, entry_a["id"])
    assert ratio_of(after) == (13000, "LOTTERY_DEFAULT", 130, False)
    assert money(after) == ("WAITING", 130, 65, 65)


async def _exchanged(admin: Api, consumer: Api, entry: dict[str, Any]) -> str:
    await consumer(EXCHANGE, id=entry["id"], target="POINTS")
    return "EXCHANGED"


async def _cancelled(admin: Api, consumer: Api, entry: dict[str, Any]) -> str:
    await admin(REFUND, id=entry["orderId"])
    return "CANCELLED"


async def _cleared(admin: Api, consumer: Api, entry: dict[str, Any]) -> str:
    assert (await admin(RESET_NOW))["resetQueuesNow"] == 1
    return "CLEARED"


@pytest.mark.parametrize(
    "end", [_exchanged, _cancelled, _cleared], ids=["exchanged", "cancelled", "cleared"]
)
async def test_drawing_on_an_ended_entry_is_a_conflict(anonymous, admin, end):
    """§8: only a WAITING entry may draw; an exchanged, cancelled or cleared one is CONFLICT."""
    await settings(admin, lottery=fixed(1000, 5000, weights=[0, 1]))
    item = await product(admin, "礼盒", 100)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    assert entry["lotteryAvailable"] is True
    status = await end(admin, buyer, entry)
    ended = await entry_by_id(buyer, entry["id"])
    assert (ended["status"], ended["lotteryAvailable"]) == (status, False)
    before_wallet = await wallet(buyer)

    error = await buyer.error(DRAW, id=entry["id"])
    assert error.code == "CONFLICT"
    after = await entry_by_id(buyer, entry["id"])
    assert ratio_of(after) == (13000, "LOTTERY_DEFAULT", 130, False)
    assert after["status"] == status
    assert await wallet(buyer) == before_wallet


async def test_an_entry_without_the_right_cannot_draw(anonymous, admin):
    """§8: an entry whose chain reached no lottery has no right: drawing is CONFLICT."""
    await settings(admin)
    item = await product(admin, "礼盒", 100, ratioBp=16000)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    assert ratio_of(entry) == (16000, "INDEPENDENT", 160, False)
    error = await buyer.error(DRAW, id=entry["id"])
    assert error.code == "CONFLICT"
    after = await entry_by_id(buyer, entry["id"])
    assert ratio_of(after) == (16000, "INDEPENDENT", 160, False)
    assert money(after) == ("WAITING", 160, 0, 160)


async def test_a_rule_before_the_lottery_gives_no_right_to_draw(anonymous, admin):
    """§5/§8: a lottery is set but the chain stops at the member level first: no right."""
    gold = await member_level(admin, "金卡")
    await settings(
        admin,
        memberLevelRatios=[{"levelId": gold, "ratioBp": 15000}],
        lottery=fixed(5000),
    )
    item = await product(admin, "礼盒", 100)
    buyer = await anonymous.login("buyer")
    await set_level(admin, buyer.user_id, gold)
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    assert ratio_of(entry) == (15000, "MEMBER_LEVEL", 150, False)
    error = await buyer.error(DRAW, id=entry["id"])
    assert error.code == "CONFLICT"
    assert ratio_of(await entry_by_id(buyer, entry["id"])) == (15000, "MEMBER_LEVEL", 150, False)


async def test_drawing_on_someone_elses_entry_is_not_found(anonymous, admin):
    """§8: only the owner draws: someone else's entry (or one that does not exist) is NOT_FOUND
    and stays untouched; the owner can still draw."""
    await settings(admin, lottery=fixed(1000, 5000, weights=[0, 1]))
    item = await product(admin, "礼盒", 100)
    owner, stranger = await anonymous.login("owner"), await anonymous.login("stranger")
    entry = await entry_for(owner, (await bought(owner, item))["id"])

    assert (await stranger.error(DRAW, id=entry["id"])).code == "NOT_FOUND"
    assert (await stranger.error(DRAW, id="999999")).code == "NOT_FOUND"
    assert ratio_of(await entry_by_id(owner, entry["id"])) == (13000, "LOTTERY_DEFAULT", 130, True)

    drawn = await draw(owner, entry["id"])
    assert ratio_of(drawn) == (5000, "LOTTERY_DRAWN", 50, False)


# ----------------------------------------------------------------------------------------------
# §8 The right and the configuration are fixed at the settlement event


async def test_changing_the_lottery_later_does_not_touch_existing_entries(anonymous, admin):
    """§8: the configuration an entry draws from is fixed at its settlement event; a change of
    the product's lottery applies to later entries only."""
    await settings(admin)
    item = await product(admin, "礼盒", 100, lottery=fixed(1000, 5000, weights=[0, 1]))
    a, b = await anonymous.login("a"), await anonymous.login("b")
    entry_a = await entry_for(a, (await bought(a, item))["id"])

    await admin(
        UPSERT_PRODUCT,
        input={"id": item, "rebate": {"lottery": fixed(1000, 5000, weights=[1, 0])}},
    )
    # A draws from the config of its settlement: 50% → 50.
    assert ratio_of(await draw(a, entry_a["id"])) == (5000, "LOTTERY_DRAWN", 50, False)

    # B settles after the change: 10% → 10. (A has completed on B's 65: 50 taken, 15 returned.)
    entry_b = await entry_for(b, (await bought(b, item))["id"])
    assert ratio_of(await draw(b, entry_b["id"])) == (1000, "LOTTERY_DRAWN", 10, False)
    assert money(await entry_by_id(a, entry_a["id"])) == ("COMPLETED", 50, 50, 0)


async def test_removing_the_lottery_later_keeps_the_right_to_draw(anonymous, admin):
    """§8: the right to draw is fixed at the settlement event: removing the plugin's lottery
    afterwards does not take it away."""
    await settings(admin, lottery=fixed(1000, 5000, weights=[0, 1]))
    item = await product(admin, "礼盒", 100)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])

    await settings(admin, lottery=None)
    kept = await entry_by_id(buyer, entry["id"])
    assert ratio_of(kept) == (13000, "LOTTERY_DEFAULT", 130, True)
    assert ratio_of(await draw(buyer, entry["id"])) == (5000, "LOTTERY_DRAWN", 50, False)


async def test_adding_a_lottery_later_gives_no_right_to_existing_entries(anonymous, admin):
    """§8: an entry settled without a lottery keeps no right when a lottery is set afterwards."""
    await settings(admin)
    item = await product(admin, "礼盒", 100)
    buyer = await anonymous.login("buyer")
    entry = await entry_for(buyer, (await bought(buyer, item))["id"])
    assert ratio_of(entry) == (13000, "DEFAULT", 130, False)

    await settings(admin, lottery=fixed(5000))
    assert ratio_of(await entry_by_id(buyer, entry["id"])) == (13000, "DEFAULT", 130, False)
    assert (await buyer.error(DRAW, id=entry["id"])).code == "CONFLICT"
    assert money(await entry_by_id(buyer, entry["id"])) == ("WAITING", 130, 0, 130)
