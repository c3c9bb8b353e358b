"""Crediting, releasing and cancelling commissions, and the daily shareholder dividend (SPEC §14).

Every change of a commission's status is one ledger transaction in the same database transaction,
keyed by its cause, so that a repeated call finds the key and does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from app.distribution.models import Commission
from app.distribution.settings import HARD_MAX_DEPTH, load_distribution_settings
from app.enums import CommissionKind, CommissionStatus, OrderStatus
from app.ledger.service import PLATFORM_SALES, post, user_cash, user_commission_pending
from app.members.models import TeamLevel, User
from app.money import apply_ratio
from app.notifications.models import NotificationEvent
from app.notifications.outbox import Outbox
from app.orders.models import Order, OrderLine

MAX_PAGE = 100
RELEASE_BATCH = 500


def commission_key(kind: CommissionKind, line_id: int, beneficiary_id: int) -> str:
    return f"commission:{kind.value.lower()}:{line_id}:{beneficiary_id}"


async def _uplines(buyer_id: int, depth: int, conn: BaseDBAsyncClient) -> list[tuple[int, int]]:
    """(user id, team level rate) of the buyer's referrer and up, at most `depth` of them."""
    chain: list[tuple[int, int | None]] = []
    seen = {buyer_id}
    current = buyer_id
    while len(chain) < depth:
        rows = await User.filter(id=current).using_db(conn).values_list("referrer_id", flat=True)
        referrer_id = rows[0] if rows else None
        # Binding forbids cycles, but a bad row must not make a buyer's own money loop back.
        if referrer_id is None or referrer_id in seen:
            break
        seen.add(referrer_id)
        level = (
            await User.filter(id=referrer_id).using_db(conn).values_list("team_level_id", flat=True)
        )
        chain.append((referrer_id, level[0] if level else None))
        current = referrer_id
    level_ids = {level_id for _, level_id in chain if level_id is not None}
    rates = dict(
        await TeamLevel.filter(id__in=list(level_ids)).using_db(conn).values_list("id", "rate_bp")
        if level_ids
        else []
    )
    return [(user_id, rates.get(level_id, 0) if level_id else 0) for user_id, level_id in chain]


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
    settings = await load_distribution_settings(conn)
    depth = min(settings.max_commission_depth, HARD_MAX_DEPTH)
    uplines = await _uplines(order.user_id, depth, conn)
    store_referrer_id: int | None = None
    if order.store_id is not None and settings.merchant_referral_rate_bp:
        from app.catalog.models import Store

        found = (
            await Store.filter(id=order.store_id)
            .using_db(conn)
            .values_list("referrer_id", flat=True)
        )
        store_referrer_id = found[0] if found else None
    # Completion may come before settlement (settle on COMPLETED): then the clock starts now.
    completed = (
        await Order.filter(id=order.id).using_db(conn).values_list("completed_at", flat=True)
    )
    completed_at = completed[0] if completed else None
    available_at = (
        completed_at + timedelta(days=settings.commission_freeze_days) if completed_at else None
    )

    credited: list[Commission] = []
    for line in lines:
        paid = line.paid_fen
        wanted: list[tuple[CommissionKind, int, int]] = []
        if uplines:
            wanted.append(
                (CommissionKind.DIRECT, uplines[0][0], apply_ratio(paid, settings.direct_rate_bp))
            )
        if len(uplines) >= 2:
            wanted.append(
                (
                    CommissionKind.INDIRECT,
                    uplines[1][0],
                    apply_ratio(paid, settings.indirect_rate_bp),
                )
            )
        highest = 0
        for user_id, rate in uplines:
            if rate > highest:
                wanted.append(
                    (CommissionKind.LEVEL_DIFFERENCE, user_id, apply_ratio(paid, rate - highest))
                )
                highest = rate
        if store_referrer_id is not None:
            wanted.append(
                (
                    CommissionKind.MERCHANT_REFERRAL,
                    store_referrer_id,
                    apply_ratio(paid, settings.merchant_referral_rate_bp),
                )
            )
        for kind, beneficiary, amount in wanted:
            if amount <= 0:
                continue
            key = commission_key(kind, line.id, beneficiary)
            posted = await post(
                key,
                "commission_credit",
                [(PLATFORM_SALES, -amount), (user_commission_pending(beneficiary), amount)],
                conn,
            )
            if not posted:
                continue  # credited by an earlier call
            commission = await Commission.create(
                user_id=beneficiary,
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
                using_db=conn,
            )
            outbox.add(
                beneficiary,
                NotificationEvent.COMMISSION_CREDITED,
                commission_id=commission.id,
                kind=kind.value,
                status=CommissionStatus.PENDING.value,
                amount_fen=amount,
                order_id=order.id,
            )
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
            for commission_id, user_id, amount in due:
                # The conditional update is the guard: a refund cancelling it meanwhile wins.
                if (
                    not await Commission.filter(id=commission_id, status=CommissionStatus.PENDING)
                    .using_db(conn)
                    .update(status=CommissionStatus.AVAILABLE)
                ):
                    continue
                await post(
                    f"commission-available:{commission_id}",
                    "commission_available",
                    [(user_commission_pending(user_id), -amount), (user_cash(user_id), amount)],
                    conn,
                )
                released += 1
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
    cancelled = 0
    for commission_id, user_id, amount in pending:
        if (
            not await Commission.filter(id=commission_id, status=CommissionStatus.PENDING)
            .using_db(conn)
            .update(status=CommissionStatus.CANCELLED)
        ):
            continue
        await post(
            f"commission-cancel:{commission_id}",
            "commission_cancel",
            [(user_commission_pending(user_id), -amount), (PLATFORM_SALES, amount)],
            conn,
        )
        cancelled += 1
    return cancelled


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
            outbox.add(
                user_id,
                NotificationEvent.COMMISSION_CREDITED,
                commission_id=commission.id,
                kind=CommissionKind.SHAREHOLDER_DIVIDEND.value,
                status=CommissionStatus.AVAILABLE.value,
                amount_fen=share,
                order_id=None,
            )
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
