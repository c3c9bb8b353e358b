"""What a consumer's queue-progress screen shows of an entry (SPEC §12), hidden fields as None."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.config import get_settings
from app.enums import EntryStatus, RatioSource
from app.errors import NotFound
from app.members.models import User
from app.money import BP_SCALE
from app.orders.models import Order
from app.rebate.figures import ahead_of, daily_inflow_fen
from app.rebate.models import Payout, QueueEntry
from app.rebate.settings import RebateSettings


@dataclass(frozen=True, slots=True)
class EntryView:
    entry: QueueEntry
    rewarded_fen: int | None
    remaining_fen: int | None
    progress_bp: int
    number: int | None
    position: int | None
    amount_ahead_fen: int | None
    estimated_wait_days: float | None
    lottery_available: bool
    show_process: bool


@dataclass(frozen=True, slots=True)
class PayoutView:
    payout_id: int
    from_order_id: int
    amount_fen: int
    at: datetime
    payer_nickname: str | None
    payer_avatar_url: str | None


def remaining_of(entry: QueueEntry) -> int:
    """Remaining is 0 once an entry has ended (SPEC §12): what was forfeited is in the ledger."""
    if entry.status != EntryStatus.WAITING:
        return 0
    return entry.entitlement_fen - entry.rewarded_fen


def lottery_available(entry: QueueEntry) -> bool:
    return (
        entry.lottery_config is not None
        and not entry.lottery_drawn
        and entry.status == EntryStatus.WAITING
        and entry.rewarded_fen == 0
        and entry.ratio_source == RatioSource.LOTTERY_DEFAULT
    )


async def entry_view(entry: QueueEntry, settings: RebateSettings, *, now: datetime) -> EntryView:
    display = settings.display
    remaining = remaining_of(entry)
    progress = (
        entry.rewarded_fen * BP_SCALE // entry.entitlement_fen
        if entry.entitlement_fen
        else BP_SCALE
    )
    position = amount_ahead = wait = None
    if entry.status == EntryStatus.WAITING and display.show_queue_process:
        count, amount_ahead = await ahead_of(entry.queue_id, entry.number, settings.reward_order)
        position = count + 1
        inflow = await daily_inflow_fen(
            entry.queue_id, now.astimezone(get_settings().timezone).date()
        )
        wait = round(amount_ahead / inflow, 2) if inflow > 0 else None
        if not display.show_pending_amount:
            amount_ahead = None
    return EntryView(
        entry=entry,
        rewarded_fen=entry.rewarded_fen if display.show_accumulated_reward else None,
        remaining_fen=remaining if display.show_pending_reward else None,
        progress_bp=progress,
        number=entry.number if display.show_queue_process else None,
        position=position,
        amount_ahead_fen=amount_ahead,
        estimated_wait_days=wait,
        lottery_available=lottery_available(entry),
        show_process=display.show_queue_process,
    )


async def get_entry(entry_id: int) -> QueueEntry:
    entry = await QueueEntry.filter(id=entry_id).first()
    if entry is None:
        raise NotFound(f"entry {entry_id} not found")
    return entry


async def list_entries(
    user_id: int, *, status: EntryStatus | None, before_id: int | None, limit: int
) -> list[QueueEntry]:
    """A user's entries, newest first."""
    query = QueueEntry.filter(user_id=user_id)
    if status is not None:
        query = query.filter(status=status)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit)


async def entry_payouts(
    entry_id: int, settings: RebateSettings, *, after_id: int | None, limit: int
) -> list[PayoutView]:
    """The payouts an entry received, oldest first, with the payer as the settings allow."""
    query = Payout.filter(entry_id=entry_id)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    payouts = await query.order_by("id").limit(limit)
    payers: dict[int, tuple[str | None, str | None]] = {}
    if settings.display.show_member_info and payouts:
        order_users = dict(
            await Order.filter(id__in=list({p.from_order_id for p in payouts})).values_list(
                "id", "user_id"
            )
        )
        users = {
            uid: (nick, avatar)
            for uid, nick, avatar in await User.filter(
                id__in=list(set(order_users.values()))
            ).values_list("id", "nickname", "avatar_url")
        }
        payers = {oid: users.get(uid, (None, None)) for oid, uid in order_users.items()}
    return [
        PayoutView(
            payout_id=p.id,
            from_order_id=p.from_order_id,
            amount_fen=p.amount_fen,
            at=p.created_at,
            payer_nickname=payers.get(p.from_order_id, (None, None))[0],
            payer_avatar_url=payers.get(p.from_order_id, (None, None))[1],
        )
        for p in payouts
    ]
