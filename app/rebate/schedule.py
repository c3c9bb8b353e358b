"""When the queue reset (SPEC §10) is due: the scheduled instants in a range, and their keys.

Pure functions: no I/O and no clock. The caller passes the range it wants, typically
``(last instant it applied, now]``, and applies each returned instant once, recording
``instant_key(t)`` under a unique constraint so that several workers or retries cannot apply the
same instant twice.

Calendar rules use the operator's time zone (SPEC §2). A scheduled local wall-clock time is turned
into an instant by ``_resolve``, the earliest instant at which the local clock reads that time or
later:

* a normal local time maps to its single instant;
* an ambiguous local time (the clocks go back, e.g. 01:30 on 2026-11-01 in America/New_York
  happens twice) is its FIRST occurrence (``fold=0``), so a reset fires once, as early as the
  operator's clock first shows the time;
* a nonexistent local time (the clocks spring forward, e.g. 02:30 on 2026-03-08 in
  America/New_York never happens) is shifted forward to the first valid instant after the gap
  (03:00 EDT there), so the reset of that day is delayed, never skipped.

That rule is monotonic (a later local time never gives an earlier instant) and depends only on the
local time, never on the range asked for, which is what makes splitting a range harmless: the
instants of ``(a, b]`` are exactly those of ``(a, m]`` followed by those of ``(m, b]``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from app.enums import ResetSchedule
from app.rebate.settings import ResetConfig

DEFAULT_LIMIT = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
# Local dates examined beyond the range on each side. A local time on a date just outside the range
# can still land inside it once converted (UTC offsets up to ±14 h, and a gap can push an instant
# to the next day: Pacific/Apia skipped all of 2011-12-30), so a small margin is needed; it costs
# nothing because every candidate is filtered on the exact instant afterwards.
_MARGIN_DAYS = 3


def reset_instants(
    config: ResetConfig,
    tz: ZoneInfo,
    after: datetime,
    until: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
) -> list[datetime]:
    """Every scheduled reset instant ``t`` with ``after < t <= until``, ascending, aware, in UTC.

    The range is half-open on the left so that consecutive ranges ``(a, m]``, ``(m, b]`` never
    share or lose an instant. Returned instants are whole seconds (``instant_key`` has second
    precision, so two instants in one second would otherwise share a key) and unique.

    At most ``limit`` instants are returned, the most recent ones: a worker that was down for years
    applies a bounded number of resets, and since each reset clears every WAITING entry, the
    older ones it drops would have had nothing left to clear. The work done is proportional to the
    number of instants returned (the range is walked backwards from ``until`` and the walk stops at
    ``limit``), not to the length of the range, and never minute by minute.
    """
    _require_aware(after, "after")
    _require_aware(until, "until")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if not config.enabled or until <= after:
        return []

    if config.schedule == ResetSchedule.AT_TIMES:
        return _at_times(config.at, tz, after, until, limit)

    at = _parse_hhmm(config.time)
    first = _shift(_local_date(after, tz, date.min), -_MARGIN_DAYS)
    last = _shift(_local_date(until, tz, date.max), _MARGIN_DAYS)
    newest_first: list[datetime] = []
    for day in _dates_desc(config, first, last):
        instant = _resolve(datetime.combine(day, at), tz)
        if instant is None or instant > until:
            continue
        if instant <= after:
            # Monotonic resolution: every earlier date gives an instant at or before this one.
            break
        # Two dates can resolve to the same instant only when a gap swallows a whole day and
        # pushes its time onto the next day's; keep one.
        if newest_first and newest_first[-1] == instant:
            continue
        newest_first.append(instant)
        if len(newest_first) == limit:
            break
    newest_first.reverse()
    return newest_first


def instant_key(instant: datetime) -> str:
    """The stable unique key of one scheduled instant, e.g. ``"schedule:2026-11-24T16:00:00Z"``.

    The same instant gives the same key whatever zone it is expressed in; sub-second parts are
    dropped (scheduled instants are whole seconds).
    """
    _require_aware(instant, "instant")
    u = instant.astimezone(UTC)
    # Formatted by hand: strftime does not zero-pad years below 1000 on every platform.
    return (
        f"schedule:{u.year:04d}-{u.month:02d}-{u.day:02d}"
        f"T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"
    )


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value!r}")


def _parse_hhmm(value: str) -> time:
    # ResetConfig has already checked the "HH:MM" shape; this only splits it.
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _local_date(instant: datetime, tz: tzinfo, overflow: date) -> date:
    # An instant at the very edge of datetime's range may not be representable in the zone.
    try:
        return instant.astimezone(tz).date()
    except OverflowError:
        return overflow


def _shift(day: date, days: int) -> date:
    ordinal = min(max(day.toordinal() + days, date.min.toordinal()), date.max.toordinal())
    return date.fromordinal(ordinal)


def _dates_desc(config: ResetConfig, first: date, last: date) -> Iterator[date]:
    """The local dates in ``[first, last]`` on which the schedule fires, newest first."""
    if config.schedule == ResetSchedule.DAILY:
        yield from _step_back(last, first, 1)
    elif config.schedule == ResetSchedule.WEEKLY:
        if config.weekday is None:
            raise ValueError("a WEEKLY reset needs a weekday")
        # isoweekday() is 1 = Monday .. 7, the same numbering as the contract's weekday.
        back = (last.isoweekday() - config.weekday) % 7
        if last.toordinal() - back >= first.toordinal():
            yield from _step_back(_shift(last, -back), first, 7)
    elif config.schedule == ResetSchedule.MONTHLY:
        if config.month_day is None:
            raise ValueError("a MONTHLY reset needs a monthDay")
        year, month = last.year, last.month
        while (year, month) >= (first.year, first.month):
            # Short months fire on their last day: monthDay 31 is Feb 28/29, Apr 30, ...
            day = date(year, month, min(config.month_day, calendar.monthrange(year, month)[1]))
            if first <= day <= last:
                yield day
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    else:  # pragma: no cover - AT_TIMES is handled by the caller, and the enum is closed
        raise ValueError(f"no calendar for schedule {config.schedule}")


def _step_back(start: date, stop: date, days: int) -> Iterator[date]:
    ordinal, floor = start.toordinal(), stop.toordinal()
    while ordinal >= floor:
        yield date.fromordinal(ordinal)
        ordinal -= days


def _at_times(
    at: list[datetime], tz: ZoneInfo, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    instants: set[datetime] = set()
    for value in at:
        if value.tzinfo is None or value.utcoffset() is None:
            # A naive instant is the operator's wall clock; resolved like any scheduled local time
            # (its own fold attribute is ignored so that the rule is the same everywhere).
            resolved = _resolve(value.replace(tzinfo=None, fold=0), tz)
        else:
            resolved = value.astimezone(UTC)
        if resolved is None:
            continue
        # Whole seconds, as instant_key sees them; instants in the same second are one reset.
        resolved = resolved.replace(microsecond=0)
        if after < resolved <= until:
            instants.add(resolved)
    return sorted(instants)[-limit:]


def _resolve(local: datetime, tz: tzinfo) -> datetime | None:
    """The earliest instant at which the clock in ``tz`` reads the naive ``local`` or later.

    That is the instant itself for a normal local time, the first occurrence (fold=0) for an
    ambiguous one, and the end of the gap for a nonexistent one. None when the instant is outside
    datetime's range.
    """
    try:
        first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if _wall(first, tz) == local:
            return first
        # A gap: with fold=0 Python uses the offset from before the transition, which lands past
        # the gap; with fold=1 the offset from after it, which lands before the gap. The clock
        # reaches `local` at the transition between them, found to the second (zone transitions
        # are whole seconds) by bisection: a handful of steps, whatever the gap's length.
        before = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
        low, high = sorted((_seconds(before), _seconds(first)))
        # Invariant: the clock reads earlier than `local` at `low`, and `local` or later at `high`.
        while high - low > 1:
            middle = (low + high) // 2
            if _wall(_EPOCH + middle * _SECOND, tz) >= local:
                high = middle
            else:
                low = middle
        return _EPOCH + high * _SECOND
    except OverflowError:
        return None


def _wall(instant: datetime, tz: tzinfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _seconds(instant: datetime) -> int:
    return (instant - _EPOCH) // _SECOND
