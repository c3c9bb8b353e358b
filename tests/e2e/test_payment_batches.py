"""Payment notifications recorded together: each judged as if it came alone, in turn (§19.6)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from app.catalog.service import upsert_product
from app.enums import OrderStatus
from app.ledger.models import Account
from app.ledger.service import EXTERNAL_WECHAT, PLATFORM_SALES
from app.members.service import login_with_openid
from app.orders import service as orders
from app.orders.models import Order, PaymentNotification
from app.orders.service import (
    LineRequest,
    PaymentOutcome,
    PaymentRecorder,
    create_order,
    record_payments,
)
from app.wechat.pay_notify import PaymentNotice
from tests.support.orders import NOW


async def _orders(count: int, price_fen: int = 16800) -> list[Order]:
    product = await upsert_product(
        {"name": "礼盒", "price_fen": price_fen, "rebate": {"enabled": True}}
    )
    made = []
    for index in range(count):
        user = await login_with_openid(f"batch-{index}", "session")
        made.append(await create_order(user.id, [LineRequest(product.id, 1)], now=NOW))
    return made


def _notice(order: Order, transaction_id: str, total_fee: int | None = None) -> PaymentNotice:
    fee = order.payable_fen if total_fee is None else total_fee
    return PaymentNotice(
        out_trade_no=order.out_trade_no,
        transaction_id=transaction_id,
        total_fee=fee,
        cash_fee=fee,
        appid="wx",
        mch_id="1",
        openid="o",
        time_end=NOW,
        raw={},
    )


async def _balance(code: str) -> int:
    account = await Account.get_or_none(code=code)
    return account.balance if account else 0


async def test_one_batch_judges_each_notice_in_turn(server):
    a, b, c, d = await _orders(4)
    unknown = replace(_notice(a, "T-unknown"), out_trade_no="R-not-ours")
    outcomes = await record_payments(
        [
            _notice(a, "T-a"),
            _notice(b, "T-b"),
            _notice(a, "T-a"),  # WeChat's repeat: answered SUCCESS, no second effect
            _notice(a, "T-a2"),  # another payment of a paid order
            unknown,
            _notice(c, "T-c", total_fee=1),  # not our amount
            _notice(d, "T-b"),  # a transaction id already used, earlier in the same batch
        ]
    )
    assert [(o.accepted, o.newly_paid, o.reason) for o in outcomes] == [
        (True, True, "OK"),
        (True, True, "OK"),
        (True, False, "duplicate"),
        (False, False, "order is not awaiting payment"),
        (False, False, "unknown out_trade_no"),
        (False, False, "total_fee does not match the order"),
        (False, False, "transaction_id already used"),
    ]
    paid = {o.id: o for o in await Order.filter(id__in=[a.id, b.id, c.id, d.id])}
    assert paid[a.id].status == OrderStatus.PAID and paid[a.id].transaction_id == "T-a"
    assert paid[b.id].status == OrderStatus.PAID and paid[b.id].transaction_id == "T-b"
    assert paid[c.id].status == OrderStatus.PENDING_PAYMENT
    assert paid[d.id].status == OrderStatus.PENDING_PAYMENT
    assert await PaymentNotification.all().count() == 2
    assert await _balance(PLATFORM_SALES.code) == a.payable_fen + b.payable_fen
    assert await _balance(EXTERNAL_WECHAT.code) == -(a.payable_fen + b.payable_fen)
    # A later batch sees the earlier one's effect.
    again = await record_payments([_notice(a, "T-a"), _notice(c, "T-c")])
    assert [(o.accepted, o.newly_paid) for o in again] == [(True, False), (True, True)]
    assert await _balance(PLATFORM_SALES.code) == 3 * a.payable_fen


async def test_recorder_answers_concurrent_notices_together(server):
    made = await _orders(12)
    recorder = PaymentRecorder(max_batch=5)
    notices = [_notice(order, f"T-{order.id}") for order in made]
    notices += [_notice(made[0], f"T-{made[0].id}")] * 3
    outcomes = await asyncio.gather(*(recorder.record(notice) for notice in notices))
    assert all(outcome.accepted for outcome in outcomes)
    assert sum(outcome.newly_paid for outcome in outcomes) == 12
    assert await Order.filter(status=OrderStatus.PAID).count() == 12
    assert await _balance(PLATFORM_SALES.code) == 12 * made[0].payable_fen


async def test_a_failed_batch_is_recorded_one_by_one(server, monkeypatch):
    made = await _orders(4)
    real = orders.record_payments_in
    sizes = []

    async def fails_together(conn, notices, **checks):
        sizes.append(len(notices))
        if len(notices) > 1:
            raise RuntimeError("the batch lost a race")
        return await real(conn, notices, **checks)

    monkeypatch.setattr(orders, "record_payments_in", fails_together)
    recorder = PaymentRecorder()
    notices = [_notice(order, f"T-{order.id}") for order in made]
    notices.append(_notice(made[1], "T-other"))
    outcomes = await asyncio.gather(*(recorder.record(notice) for notice in notices))
    assert [o.accepted for o in outcomes] == [True, True, True, True, False]
    assert outcomes[-1].reason == "order is not awaiting payment"
    assert max(sizes) > 1 and sizes.count(1) >= len(notices)
    assert await Order.filter(status=OrderStatus.PAID).count() == 4


def _batch_sizes(monkeypatch) -> list[int]:
    """The size of every batch the recorder writes from now on, in order."""
    real = orders.record_payments_in
    sizes: list[int] = []

    async def counted(conn, notices, **checks):
        sizes.append(len(notices))
        return await real(conn, notices, **checks)

    monkeypatch.setattr(orders, "record_payments_in", counted)
    return sizes


async def test_notices_that_arrive_while_the_batch_begins_join_it(server, monkeypatch):
    made = await _orders(3)
    real_begin = orders.in_transaction
    begun = asyncio.Event()

    @contextlib.asynccontextmanager
    async def slow_begin():
        # BEGIN's round trip, held until the other notices have arrived.
        await begun.wait()
        async with real_begin() as conn:
            yield conn

    monkeypatch.setattr(orders, "in_transaction", slow_begin)
    sizes = _batch_sizes(monkeypatch)
    recorder = PaymentRecorder()
    first = asyncio.create_task(recorder.record(_notice(made[0], "T-first")))
    await asyncio.sleep(0.01)  # the writer has started on the first notice alone
    later = [asyncio.create_task(recorder.record(_notice(o, f"T-{o.id}"))) for o in made[1:]]
    await asyncio.sleep(0.01)
    begun.set()
    outcomes = await asyncio.gather(first, *later)
    assert [o.newly_paid for o in outcomes] == [True, True, True]
    assert sizes == [3]


async def test_notices_still_being_read_after_begin_join_the_batch(server, monkeypatch):
    made = await _orders(4)
    real_begin = orders.in_transaction
    recorder = PaymentRecorder()

    async def arrives_after(turns: int, notice: PaymentNotice) -> PaymentOutcome:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await recorder.record(notice)

    arriving = []

    @contextlib.asynccontextmanager
    async def begin_while_more_arrive():
        async with real_begin() as conn:
            # Read in the next turns of the loop, one after the other, as a burst is.
            arriving.extend(
                asyncio.create_task(arrives_after(turns, _notice(o, f"T-{o.id}")))
                for turns, o in enumerate(made[1:])
            )
            yield conn

    monkeypatch.setattr(orders, "in_transaction", begin_while_more_arrive)
    sizes = _batch_sizes(monkeypatch)
    first = await recorder.record(_notice(made[0], "T-first"))
    outcomes = [first, *await asyncio.gather(*arriving)]
    assert [o.newly_paid for o in outcomes] == [True] * 4
    assert sizes == [4]


async def test_a_transaction_id_that_paid_another_order_is_refused_in_a_batch(server):
    made = await _orders(4)
    (first,) = await record_payments([_notice(made[0], "T-taken")])
    assert first.newly_paid
    # Batches leave this check to the unique key: the batch fails, and each notice is judged
    # alone, with the check, so that the others are paid all the same.
    recorder = PaymentRecorder()
    notices = [_notice(made[1], "T-taken")] + [_notice(o, f"T-{o.id}") for o in made[2:]]
    outcomes = await asyncio.gather(*(recorder.record(notice) for notice in notices))
    assert [(o.accepted, o.newly_paid, o.reason) for o in outcomes] == [
        (False, False, "transaction_id already used"),
        (True, True, "OK"),
        (True, True, "OK"),
    ]
    assert await Order.filter(status=OrderStatus.PAID).count() == 3
    assert await PaymentNotification.filter(transaction_id="T-taken").count() == 1
    assert await _balance(PLATFORM_SALES.code) == 3 * made[0].payable_fen
