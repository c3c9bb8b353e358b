"""What a consumer's queue-progress screen shows of an entry (SPEC §12), hidden fields as None."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections

from app.bulk import Params, fetch_rows, stored_moment
from app.config import get_settings
from app.enums import EntryStatus, RatioSource
from app.errors import NotFound
from app.money import BP_SCALE
from app.rebate.figures import ahead_of_many, daily_inflows
from app.rebate.models import QueueEntry
from app.rebate.settings import NEVER_SAVED, DisplaySettings, RebateSettings


@dataclass(frozen=True, slots=True)
class EntryRow:
    """What the progress screen reads of an entry, as one row with its queue's version: a page
    of entries is read raw, cheaper than building the models."""

    id: int
    queue_id: int
    queue_key: str
    number: int
    order_id: int
    line_id: int
    user_id: int
    status: EntryStatus
    paid_fen: int
    ratio_bp: int
    ratio_source: RatioSource
    entitlement_fen: int
    rewarded_fen: int
    order_completed: bool
    lottery_config: Any  # the configuration as the driver gives it; only its presence is read
    lottery_drawn: bool
    created_at: datetime
    ended_at: datetime | None
    queue_version: int
    settings_revision: int  # of the plugin settings, read in the same statement


_ENTRY_ROW_COLUMNS = (
    "e.id, e.queue_id, e.queue_key, e.number, e.order_id, e.line_id, e.user_id, e.status, "
    "e.paid_fen, e.ratio_bp, e.ratio_source, e.entitlement_fen, e.rewarded_fen, "
    "e.order_completed, e.lottery_config, e.lottery_drawn, e.created_at, e.ended_at, "
    "q.version AS queue_version, "
    f"COALESCE((SELECT revision FROM plugin_settings WHERE key = 'rebate'), {NEVER_SAVED}) "
    "AS settings_revision"
)


def _entry_row(row: Mapping[str, Any]) -> EntryRow:
    ended = row["ended_at"]
    return EntryRow(
        id=int(row["id"]),
        queue_id=int(row["queue_id"]),
        queue_key=row["queue_key"],
        number=int(row["number"]),
        order_id=int(row["order_id"]),
        line_id=int(row["line_id"]),
        user_id=int(row["user_id"]),
        status=_STATUSES[row["status"]],
        paid_fen=int(row["paid_fen"]),
        ratio_bp=int(row["ratio_bp"]),
        ratio_source=_RATIO_SOURCES[row["ratio_source"]],
        entitlement_fen=int(row["entitlement_fen"]),
        rewarded_fen=int(row["rewarded_fen"]),
        order_completed=bool(row["order_completed"]),
        lottery_config=row["lottery_config"],
        lottery_drawn=bool(row["lottery_drawn"]),
        created_at=stored_moment(row["created_at"]),
        ended_at=None if ended is None else stored_moment(ended),
        queue_version=int(row["queue_version"]),
        settings_revision=int(row["settings_revision"]),
    )


_STATUSES = {status.value: status for status in EntryStatus}
_RATIO_SOURCES = {source.value: source for source in RatioSource}


# An entry as the screen reads it: a model, or a row of a page.
Entry = QueueEntry | EntryRow


@dataclass(frozen=True, slots=True)
class EntryView:
    entry: Entry
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


def remaining_of(entry: Entry) -> int:
    """Remaining is 0 once an entry has ended (SPEC §12): what was forfeited is in the ledger."""
    if entry.status != EntryStatus.WAITING:
        return 0
    return entry.entitlement_fen - entry.rewarded_fen


def lottery_available(entry: Entry) -> bool:
    return (
        entry.lottery_config is not None
        and not entry.lottery_drawn
        and entry.status == EntryStatus.WAITING
        and entry.rewarded_fen == 0
        and entry.ratio_source == RatioSource.LOTTERY_DEFAULT
    )


async def entry_views(
    entries: Sequence[Entry], settings: RebateSettings, *, now: datetime
) -> list[EntryView]:
    """The progress screen of many entries with a bounded number of statements: the figures of
    every waiting entry are read together, however many entries and queues there are. Rows read
    with their queue's version need none where the answer at that version is kept."""
    display = settings.display
    measured = [
        entry
        for entry in entries
        if entry.status == EntryStatus.WAITING and display.show_queue_process
    ]
    versions = {
        entry.queue_id: entry.queue_version for entry in measured if isinstance(entry, EntryRow)
    }
    ahead, inflows = await asyncio.gather(
        ahead_of_many(
            [(entry.queue_id, entry.number) for entry in measured],
            settings.reward_order,
            versions,
        ),
        daily_inflows(
            [entry.queue_id for entry in measured],
            now.astimezone(get_settings().timezone).date(),
            versions,
        ),
    )
    return [_view(entry, display, ahead, inflows) for entry in entries]


def _view(
    entry: Entry,
    display: DisplaySettings,
    ahead: dict[tuple[int, int], tuple[int, int]],
    inflows: dict[int, float],
) -> EntryView:
    position = amount_ahead = wait = None
    figures = ahead.get((entry.queue_id, entry.number))
    if figures is not None:
        count, amount_ahead = figures
        position = count + 1
        inflow = inflows.get(entry.queue_id, 0.0)
        wait = round(amount_ahead / inflow, 2) if inflow > 0 else None
        if not display.show_pending_amount:
            amount_ahead = None
    return EntryView(
        entry=entry,
        rewarded_fen=entry.rewarded_fen if display.show_accumulated_reward else None,
        remaining_fen=remaining_of(entry) if display.show_pending_reward else None,
        progress_bp=(
            entry.rewarded_fen * BP_SCALE // entry.entitlement_fen
            if entry.entitlement_fen
            else BP_SCALE
        ),
        number=entry.number if display.show_queue_process else None,
        position=position,
        amount_ahead_fen=amount_ahead,
        estimated_wait_days=wait,
        lottery_available=lottery_available(entry),
        show_process=display.show_queue_process,
    )


async def entry_view(entry: QueueEntry, settings: RebateSettings, *, now: datetime) -> EntryView:
    return (await entry_views([entry], settings, now=now))[0]


async def get_entry(entry_id: int) -> QueueEntry:
    entry = await QueueEntry.filter(id=entry_id).first()
    if entry is None:
        raise NotFound(f"entry {entry_id} not found")
    return entry


async def list_entries(
    user_id: int, *, status: EntryStatus | None, before_id: int | None, limit: int
) -> list[EntryRow]:
    """A user's entries, newest first, each with its queue's version, in one statement."""
    client = connections.get("default")
    p = Params(client)
    where = f"e.user_id = {p(user_id)}"
    if status is not None:
        where += f" AND e.status = {p(status.value)}"
    if before_id is not None:
        where += f" AND e.id < {p(before_id)}"
    rows = await fetch_rows(
        client,
        f"SELECT {_ENTRY_ROW_COLUMNS} FROM queue_entry e JOIN rebate_queue q ON q.id = e.queue_id "
        f"WHERE {where} ORDER BY e.id DESC LIMIT {p(limit)}",
        p.values,
    )
    return [_entry_row(row) for row in rows]


async def payouts_of_entries(
    entry_ids: list[int], settings: RebateSettings, *, after_id: int | None, limit: int
) -> dict[int, list[PayoutView]]:
    """Per entry, up to `limit` payouts it received after `after_id`, oldest first, with the
    payer as the settings allow: one statement for any number of entries."""
    pages: dict[int, list[PayoutView]] = {entry_id: [] for entry_id in entry_ids}
    if not entry_ids:
        return pages
    client = connections.get("default")
    p = Params(client)
    # The first `limit` of each entry, chosen in the database: an entry may have many payouts.
    rows = await client.execute_query_dict(
        "SELECT r.id AS id, r.entry_id AS entry_id, r.from_order_id AS from_order_id, "
        "r.amount_fen AS amount_fen, r.created_at AS created_at, u.nickname AS nickname, "
        "u.avatar_url AS avatar_url FROM (SELECT id, entry_id, from_order_id, amount_fen, "
        "created_at, ROW_NUMBER() OVER (PARTITION BY entry_id ORDER BY id) AS rn FROM payout "
        f"WHERE id > {p(after_id or 0)} AND {p.among('entry_id', entry_ids)}) r "
        "JOIN app_order o ON o.id = r.from_order_id LEFT JOIN app_user u ON u.id = o.user_id "
        f"WHERE r.rn <= {p(limit)} ORDER BY r.id",
        p.values,
    )
    shown = settings.display.show_member_info
    for row in rows:
        pages[int(row["entry_id"])].append(
            PayoutView(
                payout_id=int(row["id"]),
                from_order_id=int(row["from_order_id"]),
                amount_fen=int(row["amount_fen"]),
                at=stored_moment(row["created_at"]),
                payer_nickname=row["nickname"] if shown else None,
                payer_avatar_url=row["avatar_url"] if shown else None,
            )
        )
    return pages
