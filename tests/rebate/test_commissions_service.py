"""Distribution rewards through the service against the live server's database: direct,
indirect and level-difference commissions under the depth cap, merchant referral, the freeze
before release, cancellation on refund, the daily dividend, and idempotency (SPEC §14, §19)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tortoise.transactions import in_transaction

from app.catalog.models import Store
from app.catalog.service import create_store, upsert_product
from app.distribution.models import Commission
from app.distribution.service import (
    cancel_for_order,
    commissions_of,
    credit_line_commissions,
    order_completed,
    pay_daily_dividend,
    release_due,
    team_of,
)
from app.distribution.settings import load_distribution_settings, update_distribution_settings
from app.enums import CommissionKind, CommissionStatus, OrderStatus
from app.errors import BadInput, NotFound
from app.ledger.service import PLATFORM_SALES, balance_of, user_cash, user_commission_pending
from app.members.models import TeamLevel, User
from app.members.service import login_with_openid
from app.notifications.models import Notification, NotificationEvent
from app.notifications.outbox import Outbox
from app.orders.models import Order, OrderLine
from app.orders.service import LineRequest, complete_order, create_order
from app.wallet.withdrawals import withdrawal_rules
from tests.support.orders import pay

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 9999 makes every rate below round down, so the expected amounts show the rounding.
PRICE = 9999

LEVEL = CommissionKind.LEVEL_DIFFERENCE


async def _user(openid: str, referrer: User | None = None, level: TeamLevel | None = None) -> User:
    user = await login_with_openid(openid, "session")
    await User.filter(id=user.id).update(
        referrer_id=referrer.id if referrer else None, team_level_id=level.id if level else None
    )
    return user


async def _paid_order(buyer: User, product_id: int, tag: str) -> Order:
    order = await create_order(buyer.id, [LineRequest(product_id, 1)], now=NOW)
    await pay(order, f"tx-{tag}")
    return order


async def _credit(order_id: int) -> list[Commission]:
    """What settlement does: credit inside its own transaction, then flush the outbox."""
    async with in_transaction() as conn:
        order = await Order.filter(id=order_id).using_db(conn).first()
        assert order is not None
        lines = await OrderLine.filter(order_id=order_id).using_db(conn).order_by("line_no")
        outbox = Outbox(NOW)
        credited = await credit_line_commissions(order, lines, conn, now=NOW, outbox=outbox)
        await outbox.flush(conn)
    return credited


async def _chain() -> dict[str, Any]:
    """A ← B ← C ← buyer, with team levels 8% (A), 5% (B), 3% (C), and a 9999 fen product."""
    l3 = await TeamLevel.create(name="L3", rate_bp=300)
    l5 = await TeamLevel.create(name="L5", rate_bp=500)
    l8 = await TeamLevel.create(name="L8", rate_bp=800)
    a = await _user("a", level=l8)
    b = await _user("b", a, l5)
    c = await _user("c", b, l3)
    buyer = await _user("buyer", c)
    product = await upsert_product({"name": "礼盒", "price_fen": PRICE})
    return {"a": a, "b": b, "c": c, "buyer": buyer, "product": product}


def _summary(commissions: list[Commission], people: dict[str, Any]) -> set[tuple[str, str, int]]:
    names = {user.id: name for name, user in people.items() if isinstance(user, User)}
    return {(names[c.user_id], c.kind.value, c.amount_fen) for c in commissions}


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        # 10% direct of 9999 = 999, 3% level of C = 299. No one above C is paid.
        (1, {("c", "DIRECT", 999), ("c", "LEVEL_DIFFERENCE", 299)}),
        # + 5% indirect to B = 499, and B's 5% − C's 3% = 2% = 199.
        (
            2,
            {
                ("c", "DIRECT", 999),
                ("c", "LEVEL_DIFFERENCE", 299),
                ("b", "INDIRECT", 499),
                ("b", "LEVEL_DIFFERENCE", 199),
            },
        ),
        # + A's 8% − 5% = 3% = 299. A is a third tier: level difference only, no third rate.
        (
            3,
            {
                ("c", "DIRECT", 999),
                ("c", "LEVEL_DIFFERENCE", 299),
                ("b", "INDIRECT", 499),
                ("b", "LEVEL_DIFFERENCE", 199),
                ("a", "LEVEL_DIFFERENCE", 299),
            },
        ),
    ],
)
async def test_direct_indirect_and_level_difference_obey_the_depth_cap(
    server: Any, depth: int, expected: set[tuple[str, str, int]]
) -> None:
    people = await _chain()
    await update_distribution_settings(
        {"direct_rate_bp": 1000, "indirect_rate_bp": 500, "max_commission_depth": depth}
    )
    order = await _paid_order(people["buyer"], people["product"].id, f"depth{depth}")
    credited = await _credit(order.id)

    assert _summary(credited, people) == expected
    assert all(c.status == CommissionStatus.PENDING and c.available_at is None for c in credited)
    assert all(c.from_user_id == people["buyer"].id and c.order_id == order.id for c in credited)
    total = sum(amount for _, _, amount in expected)
    assert await balance_of(PLATFORM_SALES) == PRICE - total  # the payment, less commissions
    for name in ("a", "b", "c"):
        owed = sum(amount for who, _, amount in expected if who == name)
        assert await balance_of(user_commission_pending(people[name].id)) == owed
        assert await balance_of(user_cash(people[name].id)) == 0
    notified = await Notification.filter(event=NotificationEvent.COMMISSION_CREDITED).count()
    assert notified == len(expected)


async def test_level_difference_pays_only_a_higher_rate_than_below(server: Any) -> None:
    # C has the highest rate: B and A above it, with lower levels, get no difference.
    low = await TeamLevel.create(name="low", rate_bp=200)
    high = await TeamLevel.create(name="high", rate_bp=600)
    a = await _user("a", level=low)
    b = await _user("b", a, low)
    c = await _user("c", b, high)
    buyer = await _user("buyer", c)
    product = await upsert_product({"name": "礼盒", "price_fen": PRICE})
    await update_distribution_settings({"max_commission_depth": 3})
    order = await _paid_order(buyer, product.id, "lvl")
    credited = await _credit(order.id)
    # Zero direct / indirect rates credit nothing: only C's 6% = 599.
    assert [(c_.user_id, c_.kind, c_.amount_fen) for c_ in credited] == [(c.id, LEVEL, 599)]


async def test_crediting_twice_does_nothing_the_second_time(server: Any) -> None:
    people = await _chain()
    await update_distribution_settings({"direct_rate_bp": 1000, "indirect_rate_bp": 500})
    order = await _paid_order(people["buyer"], people["product"].id, "twice")
    first = await _credit(order.id)
    sales = await balance_of(PLATFORM_SALES)
    assert len(first) == 4
    assert await _credit(order.id) == []
    assert await Commission.all().count() == 4
    assert await balance_of(PLATFORM_SALES) == sales
    assert await Notification.filter(event=NotificationEvent.COMMISSION_CREDITED).count() == 4


async def test_merchant_referral_for_store_goods_and_cashier(server: Any) -> None:
    from app.orders.service import create_cashier_order

    recruiter = await _user("recruiter")
    buyer = await _user("buyer")  # no referrer: only the merchant referral is due
    store = await create_store("小店")
    await Store.filter(id=store.id).update(referrer_id=recruiter.id)
    product = await upsert_product({"name": "店品", "price_fen": PRICE, "store_id": store.id})
    await update_distribution_settings({"merchant_referral_rate_bp": 200, "direct_rate_bp": 1000})

    goods = await _paid_order(buyer, product.id, "store")
    credited = await _credit(goods.id)
    assert [(c.user_id, c.kind, c.amount_fen, c.store_id) for c in credited] == [
        (recruiter.id, CommissionKind.MERCHANT_REFERRAL, 199, store.id)  # 2% of 9999
    ]

    cashier = await create_cashier_order(buyer.id, store.id, 5000, now=NOW)
    await pay(cashier, "tx-cashier")
    credited = await _credit(cashier.id)
    assert [(c.kind, c.amount_fen) for c in credited] == [(CommissionKind.MERCHANT_REFERRAL, 100)]
    assert await balance_of(user_commission_pending(recruiter.id)) == 299


async def test_mall_orders_pay_no_merchant_referral(server: Any) -> None:
    people = await _chain()
    await update_distribution_settings({"merchant_referral_rate_bp": 5000})
    order = await _paid_order(people["buyer"], people["product"].id, "mall")
    credited = await _credit(order.id)
    assert CommissionKind.MERCHANT_REFERRAL not in {c.kind for c in credited}


async def test_commissions_become_available_after_completion_and_freeze(server: Any) -> None:
    people = await _chain()
    await update_distribution_settings(
        {"direct_rate_bp": 1000, "indirect_rate_bp": 500, "commission_freeze_days": 7}
    )
    order = await _paid_order(people["buyer"], people["product"].id, "release")
    await _credit(order.id)
    # Not completed yet: nothing is due however late it is.
    assert await release_due(NOW + timedelta(days=365)) == 0

    completed_at = NOW + timedelta(days=1)
    await complete_order(order.id, now=completed_at)
    # complete_order set the four commissions' release time; a second call finds nothing to do.
    async with in_transaction() as conn:
        assert await order_completed(order.id, conn, now=completed_at) == 0
    due = completed_at + timedelta(days=7)
    assert await release_due(due - timedelta(seconds=1)) == 0
    assert await release_due(due) == 4
    assert await release_due(due) == 0  # already released

    c, b = people["c"], people["b"]
    assert await balance_of(user_cash(c.id)) == 999 + 299
    assert await balance_of(user_cash(b.id)) == 499 + 199
    assert await balance_of(user_commission_pending(c.id)) == 0
    assert await balance_of(user_commission_pending(b.id)) == 0
    statuses = set(await Commission.all().values_list("status", flat=True))
    assert statuses == {CommissionStatus.AVAILABLE}
    # A refund after release takes nothing back: the money was earned.
    async with in_transaction() as conn:
        assert await cancel_for_order(order.id, conn, now=due) == 0
    assert await balance_of(user_cash(c.id)) == 999 + 299


async def test_settlement_after_completion_starts_the_freeze_at_completion(server: Any) -> None:
    people = await _chain()
    await update_distribution_settings({"direct_rate_bp": 1000, "commission_freeze_days": 2})
    order = await _paid_order(people["buyer"], people["product"].id, "late")
    await complete_order(order.id, now=NOW)
    credited = await _credit(order.id)
    assert {c.available_at for c in credited} == {NOW + timedelta(days=2)}
    assert await release_due(NOW + timedelta(days=2)) == len(credited)


async def test_refund_before_availability_cancels_pending_commissions(server: Any) -> None:
    people = await _chain()
    await update_distribution_settings({"direct_rate_bp": 1000, "indirect_rate_bp": 500})
    order = await _paid_order(people["buyer"], people["product"].id, "refund")
    await _credit(order.id)
    async with in_transaction() as conn:
        assert await cancel_for_order(order.id, conn, now=NOW) == 4
    async with in_transaction() as conn:
        assert await cancel_for_order(order.id, conn, now=NOW) == 0
    statuses = set(await Commission.all().values_list("status", flat=True))
    assert statuses == {CommissionStatus.CANCELLED}
    assert await balance_of(PLATFORM_SALES) == PRICE  # every commission came back
    for name in ("b", "c"):
        assert await balance_of(user_commission_pending(people[name].id)) == 0
    assert await release_due(NOW + timedelta(days=365)) == 0


async def _completed_order(buyer: User, price: int, tag: str, completed_at: datetime) -> Order:
    product = await upsert_product({"name": f"p-{tag}", "price_fen": price})
    order = await _paid_order(buyer, product.id, tag)
    return await complete_order(order.id, now=completed_at)


async def test_daily_dividend_split_equally_remainder_stays(server: Any) -> None:
    holder = await TeamLevel.create(name="股东", rate_bp=0, shareholder=True)
    plain = await TeamLevel.create(name="普通", rate_bp=0, shareholder=False)
    holders = [await _user(f"holder-{i}", level=holder) for i in range(3)]
    other = await _user("other", level=plain)
    buyer = await _user("buyer")
    await update_distribution_settings({"dividend_rate_bp": 1000})
    day = date(2026, 11, 25)
    # Shanghai's 25 November runs from 24 November 16:00 to 25 November 16:00 UTC.
    await _completed_order(buyer, 7001, "early", datetime(2026, 11, 24, 16, 30, tzinfo=UTC))
    await _completed_order(buyer, 3000, "noon", datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    await _completed_order(buyer, 50000, "next-day", datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    refunded = await _completed_order(buyer, 40000, "refunded", NOW)
    await Order.filter(id=refunded.id).update(status=OrderStatus.REFUNDED)

    paid_at = datetime(2026, 11, 25, 16, 5, tzinfo=UTC)
    sales = await balance_of(PLATFORM_SALES)
    # 10% of 10001 = 1000, split three ways = 333 each, 1 fen stays with the platform.
    assert await pay_daily_dividend(day, now=paid_at, tz=SHANGHAI) == 3
    for user in holders:
        assert await balance_of(user_cash(user.id)) == 333
    assert await balance_of(user_cash(other.id)) == 0
    assert await balance_of(PLATFORM_SALES) == sales - 999
    rows = await Commission.filter(kind=CommissionKind.SHAREHOLDER_DIVIDEND)
    assert {(r.status, r.amount_fen) for r in rows} == {(CommissionStatus.AVAILABLE, 333)}

    # Once per day, even when the shareholders change in between.
    await _user("holder-late", level=holder)
    assert await pay_daily_dividend(day, now=paid_at, tz=SHANGHAI) == 0
    assert await balance_of(PLATFORM_SALES) == sales - 999
    assert await release_due(paid_at + timedelta(days=30)) == 0  # nothing pending to release


async def test_no_dividend_without_shareholders_or_turnover(server: Any) -> None:
    await update_distribution_settings({"dividend_rate_bp": 1000})
    assert await pay_daily_dividend(date(2026, 11, 25), now=NOW, tz=SHANGHAI) == 0
    holder = await TeamLevel.create(name="股东", rate_bp=0, shareholder=True)
    await _user("holder", level=holder)
    assert await pay_daily_dividend(date(2026, 11, 25), now=NOW, tz=SHANGHAI) == 0
    assert await Commission.all().count() == 0


async def test_team_and_commission_lists_newest_first(server: Any) -> None:
    people = await _chain()
    second = await _user("buyer-2", people["c"])
    await update_distribution_settings({"direct_rate_bp": 1000})
    team = await team_of(people["c"].id, limit=10)
    assert [u.id for u in team] == [second.id, people["buyer"].id]
    assert [u.id for u in await team_of(people["c"].id, before_id=second.id, limit=10)] == [
        people["buyer"].id
    ]
    await _credit((await _paid_order(people["buyer"], people["product"].id, "l1")).id)
    await _credit((await _paid_order(second, people["product"].id, "l2")).id)
    mine = await commissions_of(people["c"].id, status=CommissionStatus.PENDING, limit=1)
    assert len(mine) == 1 and mine[0].from_user_id == second.id
    older = await commissions_of(people["c"].id, before_id=mine[0].id, limit=10)
    assert all(c.id < mine[0].id for c in older) and older
    assert await commissions_of(people["c"].id, status=CommissionStatus.AVAILABLE) == []


async def test_settings_defaults_patch_validation_and_team_levels(server: Any) -> None:
    defaults = await load_distribution_settings()
    assert defaults.commission_freeze_days == 7 and defaults.max_commission_depth == 2
    assert defaults.withdrawal_min_fen == 100 and defaults.direct_rate_bp == 0

    settings, levels = await update_distribution_settings(
        {"withdrawal_min_fen": 500, "withdrawal_fee_bp": 60, "direct_rate_bp": None},
        [{"name": "银牌", "rate_bp": 300, "shareholder": False}],
    )
    assert settings.withdrawal_min_fen == 500 and settings.direct_rate_bp == 0
    assert await withdrawal_rules() == (500, 60)  # the wallet reads the same document
    assert [(lv.name, lv.rate_bp) for lv in levels] == [("银牌", 300)]

    keep = await TeamLevel.create(name="keep", rate_bp=100)
    _, levels = await update_distribution_settings(
        {}, [{"id": str(levels[0].id), "name": "金牌", "rate_bp": 800, "shareholder": True}]
    )
    assert {(lv.name, lv.rate_bp, lv.shareholder) for lv in levels} == {
        ("金牌", 800, True),
        ("keep", 100, False),
    }
    assert keep.id in {lv.id for lv in levels}

    for patch, levels_in, field in [
        ({"max_commission_depth": 4}, None, "maxCommissionDepth"),
        ({"direct_rate_bp": 10001}, None, "directRateBp"),
        ({"commission_freeze_days": 366}, None, "commissionFreezeDays"),
        ({"withdrawal_min_fen": 0}, None, "withdrawalMinFen"),
        ({}, [{"name": "", "rate_bp": 1, "shareholder": False}], "teamLevels[0].name"),
        ({}, [{"name": "x", "rate_bp": -1, "shareholder": False}], "teamLevels[0].rateBp"),
    ]:
        with pytest.raises(BadInput) as caught:
            await update_distribution_settings(patch, levels_in)
        assert caught.value.field == field
    with pytest.raises(NotFound):
        await update_distribution_settings(
            {}, [{"id": 999999, "name": "x", "rate_bp": 1, "shareholder": False}]
        )
    # Nothing of the refused updates was saved.
    assert (await load_distribution_settings()).withdrawal_min_fen == 500
