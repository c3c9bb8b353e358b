"""Scheduled resets (SPEC §10): each instant once, missed ones applied, in the operator's zone.

The clock is an argument: the tests move it over days, month ends and time zones."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.enums import EntryStatus
from app.rebate.models import QueueEntry, ResetRun
from app.rebate.service import settle_orders
from app.rebate.settings import update_rebate_settings
from tests.support.orders import NOW, paid_orders
from workers.jobs import apply_due_resets

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _waiting_entries(count: int, prefix: str) -> None:
    ids = await paid_orders(count, prefix=prefix)
    await settle_orders(ids, now=NOW)


async def _statuses() -> list[EntryStatus]:
    return [e.status for e in await QueueEntry.all().order_by("number")]


async def test_daily_reset_clears_once_per_instant(server):
    # NOW is 12:00 in Shanghai; the daily reset at 00:00 Shanghai is 16:00 UTC.
    await update_rebate_settings({"reset": {"enabled": True, "schedule": "DAILY"}}, now=NOW)
    await _waiting_entries(3, "daily")
    # First buyer's entry got nothing (own order), the next two paid it: A completed? 2×10920
    # = 21840 = A's entitlement, so A is COMPLETED, B and C wait.
    assert await _statuses() == [EntryStatus.COMPLETED, EntryStatus.WAITING, EntryStatus.WAITING]
    assert await apply_due_resets(NOW + timedelta(hours=3), tz=SHANGHAI) == 0  # 15:00 UTC
    midnight = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert await apply_due_resets(midnight, tz=SHANGHAI) == 2
    assert await _statuses() == [EntryStatus.COMPLETED, EntryStatus.CLEARED, EntryStatus.CLEARED]
    # The same instant again, from two workers at once: nothing more happens.
    assert await asyncio.gather(
        apply_due_resets(midnight + timedelta(minutes=1), tz=SHANGHAI),
        apply_due_resets(midnight + timedelta(minutes=2), tz=SHANGHAI),
    ) == [0, 0]
    assert [run.instant_key for run in await ResetRun.all()] == ["schedule:2026-11-25T16:00:00Z"]


async def test_missed_instants_are_applied_when_a_worker_starts(server):
    await update_rebate_settings({"reset": {"enabled": True, "schedule": "DAILY"}}, now=NOW)
    await _waiting_entries(2, "missed")
    # No worker ran for three days: three midnights are owed, each recorded once; the first
    # clears both waiting entries (B's order paid A only half).
    assert await apply_due_resets(NOW + timedelta(days=3), tz=SHANGHAI) == 2
    keys = [run.instant_key for run in await ResetRun.all().order_by("scheduled_for")]
    assert keys == [
        "schedule:2026-11-25T16:00:00Z",
        "schedule:2026-11-26T16:00:00Z",
        "schedule:2026-11-27T16:00:00Z",
    ]
    assert await apply_due_resets(NOW + timedelta(days=3), tz=SHANGHAI) == 0


async def test_a_new_schedule_owes_nothing_for_the_time_before_it(server):
    await _waiting_entries(2, "late")
    # Set at NOW; a worker catching up on "the last week" applies nothing from before NOW.
    await update_rebate_settings({"reset": {"enabled": True, "schedule": "DAILY"}}, now=NOW)
    assert await apply_due_resets(NOW + timedelta(hours=1), tz=SHANGHAI) == 0
    assert await ResetRun.all().count() == 0


async def test_monthly_on_the_31st_falls_on_the_last_day_of_short_months(server):
    start = datetime(2027, 2, 1, tzinfo=UTC)
    config = {"enabled": True, "schedule": "MONTHLY", "month_day": 31, "time": "03:00"}
    await update_rebate_settings(
        {"reset": {k if k != "monthDay" else "month_day": v for k, v in config.items()}}, now=start
    )
    await _waiting_entries(2, "month")
    # February 2027 has 28 days: the reset is 2027-02-28 03:00 in Shanghai = 02-27 19:00 UTC.
    assert await apply_due_resets(datetime(2027, 2, 27, 18, 59, tzinfo=UTC), tz=SHANGHAI) == 0
    assert await apply_due_resets(datetime(2027, 2, 27, 19, 0, tzinfo=UTC), tz=SHANGHAI) == 2


async def test_the_operators_zone_decides_the_instant(server):
    await update_rebate_settings(
        {"reset": {"enabled": True, "schedule": "DAILY", "time": "06:00"}}, now=NOW
    )
    await _waiting_entries(2, "zone")
    # 06:00 in New York on 2026-11-25 is 11:00 UTC (EST); in Shanghai it would have been
    # 22:00 UTC the day before, before the schedule was set.
    new_york = ZoneInfo("America/New_York")
    assert await apply_due_resets(datetime(2026, 11, 25, 10, 59, tzinfo=UTC), tz=new_york) == 0
    assert await apply_due_resets(datetime(2026, 11, 25, 11, 0, tzinfo=UTC), tz=new_york) == 2


async def test_a_disabled_schedule_does_nothing(server):
    await _waiting_entries(2, "off")
    assert await apply_due_resets(NOW + timedelta(days=30), tz=SHANGHAI) == 0
    assert EntryStatus.CLEARED not in await _statuses()
