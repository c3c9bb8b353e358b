"""Crediting, releasing and cancelling commissions, and the daily shareholder dividend (SPEC §14).

Every change of a commission's status is one ledger transaction in the same database transaction,
keyed by its cause, so that a repeated call finds the key and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from app.bulk import Params, insert_rows
from app.distribution.models import Commission
from app.distribution.settings import HARD_MAX_DEPTH, load_distribution_settings
from app.enums import CommissionKind, CommissionStatus, OrderStatus
from app.ledger.service import (
    PLATFORM_SALES,
    AccountRef,
    Txn,
    post,
    post_many,
    user_cash,
    user_commission_pending,
)
from app.members.models import TeamLevel, User
from app.money import apply_ratio
from app.notifications.models import NotificationEvent
from app.notifications.outbox import Outbox
from app.orders.models import Order, OrderLine

MAX_PAGE = 100
RELEASE_BATCH = 500


def commission_key(kind: CommissionKind, line_id: int, beneficiary_id: int) -> str:
    return f"commission:{kind.value.lower()}:{line_id}:{beneficiary_id}"


async def _uplines(
    buyer_ids: set[int], depth: int, conn: BaseDBAsyncClient
) -> dict[int, list[tuple[int, int]]]:
    """(user id, team level rate) of each buyer's referrer and up, at most `depth` of them, read
    for all the buyers together: one statement per tier, one for the levels."""
    known: dict[int, tuple[int | None, int | None]] = {}  # user → (referrer, team level)

    async def read(user_ids: set[int]) -> None:
        wanted = sorted(user_ids - known.keys())
        if not wanted:
            return
        p = Params(conn)
        for row in await conn.execute_query_dict(
            f"SELECT id, referrer_id, team_level_id FROM app_user WHERE {p.among('id', wanted)}",
            p.values,
        ):
            known[row["id"]] = (row["referrer_id"], row["team_level_id"])

    chains: dict[int, list[int]] = {buyer: [] for buyer in buyer_ids}
    seen = {buyer: {buyer} for buyer in buyer_ids}
    current = {buyer: buyer for buyer in buyer_ids}
    while current:
        await read(set(current.values()))
        following: dict[int, int] = {}
        for buyer, user_id in current.items():
            referrer_id = known.get(user_id, (None, None))[0]
            # Binding forbids cycles, but a bad row must not make a buyer's own money loop back.
            if referrer_id is None or referrer_id in seen[buyer]:
                continue
            seen[buyer].add(referrer_id)
            chains[buyer].append(referrer_id)
            if len(chains[buyer]) < depth:
                following[buyer] = referrer_id
        current = following
    await read({user_id for chain in chains.values() for user_id in chain})
    level_ids = {known[u][1] for chain in chains.values() for u in chain if known[u][1] is not None}
    rates = dict(
        await TeamLevel.filter(id__in=list(level_ids)).using_db(conn).values_list("id", "rate_bp")
        if level_ids
        else []
    )
    return {
        buyer: [
            (user_id, rates.get(known[user_id][1], 0) if known[user_id][1] else 0)
            for user_id in chain
        ]
        for buyer, chain in chains.items()
    }


class _OrderLike(Protocol):
    id: int
    user_id: int
    store_id: int | None
    completed_at: datetime | None


class _LineLike(Protocol):
    id: int
    paid_fen: int


async def credit_line_commissions(
    order: Order,
    lines: Sequence[OrderLine],
    conn: BaseDBAsyncClient,
    *,
    now: datetime,
    outbox: Outbox,
) -> list[Commission]:
    """Credit the PENDING commissions earned by the order's lines, in the settlement transaction.

    The caller flushes the outbox. Lines credited before are skipped by their keys.
    """
    return await credit_orders_commissions([(order, lines)], conn, now=now, outbox=outbox)


_COMMISSION_COLUMNS = (
    ("user_id", "int"),
    ("kind", "text"),
    ("status", "text"),
    ("amount_fen", "bigint"),
    ("from_user_id", "int"),
    ("order_id", "int"),
    ("line_id", "int"),
    ("store_id", "int"),
    ("key", "text"),
    ("available_at", "timestamptz"),
    ("created_at", "timestamptz"),
)


async def credit_orders_commissions(
    orders: Sequence[tuple[_OrderLike, Sequence[_LineLike]]],
    conn: BaseDBAsyncClient,
    *,
    now: datetime,
    outbox: Outbox,
) -> list[Commission]:
    """`credit_line_commissions` for a batch of orders (their rows locked by the caller), in a
    fixed number of statements whatever the number of orders."""
    if not orders:
        return []
    settings = await load_distribution_settings(conn)
    depth = min(settings.max_commission_depth, HARD_MAX_DEPTH)
    uplines = await _uplines({order.user_id for order, _ in orders}, depth, conn)
    store_referrers: dict[int, int | None] = {}
    store_ids = sorted({order.store_id for order, _ in orders if order.store_id is not None})
    if store_ids and settings.merchant_referral_rate_bp:
        from app.catalog.models import Store

        store_referrers = dict(
            await Store.filter(id__in=store_ids).using_db(conn).values_list("id", "referrer_id")
        )
    now = now.astimezone(UTC)
    wanted: list[tuple[_OrderLike, _LineLike, CommissionKind, int, int, datetime | None]] = []
    for order, lines in orders:
        chain = uplines.get(order.user_id, [])
        store_referrer_id = store_referrers.get(order.store_id) if order.store_id else None
        # Completion may come before settlement (settle on COMPLETED): then the clock starts now.
        available_at = (
            order.completed_at.astimezone(UTC) + timedelta(days=settings.commission_freeze_days)
            if order.completed_at
            else None
        )
        for line in lines:
            paid = line.paid_fen
            earned: list[tuple[CommissionKind, int, int]] = []
            if chain:
                earned.append(
                    (CommissionKind.DIRECT, chain[0][0], apply_ratio(paid, settings.direct_rate_bp))
                )
            if len(chain) >= 2:
                earned.append(
                    (
                        CommissionKind.INDIRECT,
                        chain[1][0],
                        apply_ratio(paid, settings.indirect_rate_bp),
                    )
                )
            highest = 0
            for user_id, rate in chain:
                if rate > highest:
                    earned.append(
                        (
                            CommissionKind.LEVEL_DIFFERENCE,
                            user_id,
                            apply_ratio(paid, rate - highest),
                        )
                    )
                    highest = rate
            if store_referrer_id is not None:
                earned.append(
                    (
                        CommissionKind.MERCHANT_REFERRAL,
                        store_referrer_id,
                        apply_ratio(paid, settings.merchant_referral_rate_bp),
                    )
                )
            for kind, beneficiary, amount in earned:
                if amount > 0:
                    wanted.append((order, line, kind, beneficiary, amount, available_at))
    if not wanted:
        return []
    keys = [commission_key(kind, line.id, who) for _, line, kind, who, _, _ in wanted]
    # Credited by an earlier call: the key is taken, and nothing is credited twice.
    posted = await post_many(
        [
            Txn(
                key,
                "commission_credit",
                [(PLATFORM_SALES, -amount), (user_commission_pending(who), amount)],
            )
            for key, (_, _, _, who, amount, _) in zip(keys, wanted, strict=True)
        ],
        conn,
    )
    fresh = []
    for key, item in zip(keys, wanted, strict=True):
        if key in posted:
            posted.discard(key)  # the first of a key is credited, as post would do it
            fresh.append((key, item))
    rows = [
        (
            who,
            kind.value,
            CommissionStatus.PENDING.value,
            amount,
            order.user_id,
            order.id,
            line.id,
            order.store_id,
            key,
            available_at,
            now,
        )
        for key, (order, line, kind, who, amount, available_at) in fresh
    ]
    ids = {
        row["key"]: row["id"]
        for row in await insert_rows(
            conn, "commission", _COMMISSION_COLUMNS, rows, returning="id, key"
        )
    }
    credited: list[Commission] = []
    for key, (order, line, kind, who, amount, available_at) in fresh:
        commission = Commission(
            id=ids[key],
            user_id=who,
            kind=kind,
            status=CommissionStatus.PENDING,
            amount_fen=amount,
            from_user_id=order.user_id,
            order_id=order.id,
            line_id=line.id,
            store_id=order.store_id,
            key=key,
            available_at=available_at,
            created_at=now,
        )
        _notify_credited(outbox, commission)
        credited.append(commission)
    return credited


async def order_completed(order_id: int, conn: BaseDBAsyncClient, *, now: datetime) -> int:
    """Start the freeze of the order's PENDING commissions; returns how many were set."""
    settings = await load_distribution_settings(conn)
    now = now.astimezone(UTC)  # stored and compared as UTC text by SQLite
    return (
        await Commission.filter(
            order_id=order_id, status=CommissionStatus.PENDING, available_at__isnull=True
        )
        .using_db(conn)
        .update(available_at=now + timedelta(days=settings.commission_freeze_days))
    )


async def release_due(now: datetime) -> int:
    """Move due PENDING commissions to their owners' cash; returns how many were released."""
    # Compared in UTC: SQLite compares the stored text, not the instant.
    now = now.astimezone(UTC)
    released = 0
    while True:
        async with in_transaction() as conn:
            due = (
                await Commission.filter(status=CommissionStatus.PENDING, available_at__lte=now)
                .using_db(conn)
                .order_by("id")
                .limit(RELEASE_BATCH)
                .values_list("id", "user_id", "amount_fen")
            )
            released += await _leave_pending(
                due,
                CommissionStatus.AVAILABLE,
                ("commission-available", "commission_available"),
                user_cash,
                conn,
            )
        if len(due) < RELEASE_BATCH:
            return released


async def cancel_for_order(order_id: int, conn: BaseDBAsyncClient, *, now: datetime) -> int:
    """The order was refunded: its PENDING commissions go back to the platform, AVAILABLE stay."""
    pending = (
        await Commission.filter(order_id=order_id, status=CommissionStatus.PENDING)
        .using_db(conn)
        .order_by("id")
        .values_list("id", "user_id", "amount_fen")
    )
    return await _leave_pending(
        pending,
        CommissionStatus.CANCELLED,
        ("commission-cancel", "commission_cancel"),
        lambda _: PLATFORM_SALES,
        conn,
    )


async def _leave_pending(
    rows: list[tuple[int, int, int]],
    status: CommissionStatus,
    cause: tuple[str, str],  # (ledger key prefix, ledger transaction kind)
    destination: Callable[[int], AccountRef],
    conn: BaseDBAsyncClient,
) -> int:
    """Move each (id, user, amount) PENDING commission to `status` and its amount from the user's
    pending account to `destination(user)`; how many moved. The conditional update is the guard:
    of a release and a refund racing for one commission, the first wins and the other skips it."""
    moved = 0
    for commission_id, user_id, amount in rows:
        if (
            not await Commission.filter(id=commission_id, status=CommissionStatus.PENDING)
            .using_db(conn)
            .update(status=status)
        ):
            continue
        await post(
            f"{cause[0]}:{commission_id}",
            cause[1],
            [(user_commission_pending(user_id), -amount), (destination(user_id), amount)],
            conn,
        )
        moved += 1
    return moved


async def completed_turnover(day: date, tz: tzinfo, conn: BaseDBAsyncClient) -> int:
    """Payable fen of the orders completed on `day` in `tz` and still COMPLETED (not refunded)."""
    # In UTC: the stored instants are UTC, and SQLite compares the text, not the instant.
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    rows = (
        await Order.filter(
            status=OrderStatus.COMPLETED, completed_at__gte=start, completed_at__lt=end
        )
        .using_db(conn)
        .annotate(total=Sum("payable_fen"))
        .values_list("total", flat=True)
    )
    return int(rows[0] or 0) if rows else 0


async def pay_daily_dividend(day: date, *, now: datetime, tz: tzinfo) -> int:
    """Share `dividendRateBp` of `day`'s completed turnover equally among shareholders.

    `day` is the day whose turnover is shared (the timer passes yesterday). One ledger
    transaction keyed by the day holds every share, so a second call for the day does nothing
    even if the shareholders changed in between. Returns how many shares were paid.
    """
    async with in_transaction() as conn:
        settings = await load_distribution_settings(conn)
        if settings.dividend_rate_bp == 0:
            return 0
        shareholders = (
            await User.filter(team_level__shareholder=True)
            .using_db(conn)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if not shareholders:
            return 0
        pool = apply_ratio(await completed_turnover(day, tz, conn), settings.dividend_rate_bp)
        # Rounded down: the remainder is simply never taken from the platform.
        share = pool // len(shareholders)
        if share == 0:
            return 0
        postings = [(PLATFORM_SALES, -share * len(shareholders))]
        postings += [(user_cash(user_id), share) for user_id in shareholders]
        if not await post(f"dividend:{day.isoformat()}", "shareholder_dividend", postings, conn):
            return 0
        outbox = Outbox(now)
        for user_id in shareholders:
            commission = await Commission.create(
                user_id=user_id,
                kind=CommissionKind.SHAREHOLDER_DIVIDEND,
                status=CommissionStatus.AVAILABLE,
                amount_fen=share,
                key=f"dividend:{day.isoformat()}:{user_id}",
                available_at=now,
                created_at=now,
                using_db=conn,
            )
            _notify_credited(outbox, commission)
        await outbox.flush(conn)
    return len(shareholders)


def _page_size(limit: int) -> int:
    # One more than a page: the API asks for it to know whether another page follows.
    return max(1, min(limit, MAX_PAGE + 1))


async def team_of(user_id: int, *, before_id: int | None = None, limit: int = 20) -> list[User]:
    """The user's direct referees, newest first, before the `before_id` cursor."""
    query = User.filter(referrer_id=user_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(_page_size(limit))


async def commissions_of(
    user_id: int,
    *,
    status: CommissionStatus | None = None,
    before_id: int | None = None,
    limit: int = 20,
) -> list[Commission]:
    """The user's commissions, newest first, optionally of one status."""
    query = Commission.filter(user_id=user_id)
    if status is not None:
        query = query.filter(status=status)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(_page_size(limit))


def _notify_credited(outbox: Outbox, commission: Commission) -> None:
    """Tell the earner of a commission just credited, whatever its kind."""
    outbox.add(
        commission.user_id,
        NotificationEvent.COMMISSION_CREDITED,
        commission_id=commission.id,
        kind=commission.kind.value,
        status=commission.status.value,
        amount_fen=commission.amount_fen,
        order_id=commission.order_id,
    )
