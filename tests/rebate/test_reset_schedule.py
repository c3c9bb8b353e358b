"""The reset calendar (SPEC §10, §2): which instants are due in a range, in the operator's zone.

The examples pin the calendar rules and the DST choices; the Hypothesis properties check the
result against a slow, independent oracle and check that splitting a range changes nothing, which
is what lets a worker apply instants incrementally, each exactly once.
"""

from __future__ import annotations

import calendar
import time as wallclock
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.enums import ResetSchedule
from app.rebate.schedule import instant_key, reset_instants
from app.rebate.settings import ResetConfig

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
# Beyond the brief's zones: a 30-minute DST shift, and a zone that skipped a whole day (2011-12-30).
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
APIA = ZoneInfo("Pacific/Apia")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(at: str = "00:00") -> ResetConfig:
    return ResetConfig(enabled=True, schedule=ResetSchedule.DAILY, time=at)


def weekly(weekday: int, at: str = "00:00") -> ResetConfig:
    return ResetConfig(enabled=True, schedule=ResetSchedule.WEEKLY, time=at, weekday=weekday)


def monthly(month_day: int, at: str = "00:00") -> ResetConfig:
    return ResetConfig(enabled=True, schedule=ResetSchedule.MONTHLY, time=at, month_day=month_day)


def at_times(*instants: datetime) -> ResetConfig:
    return ResetConfig(enabled=True, schedule=ResetSchedule.AT_TIMES, at=list(instants))


def local_dates(instants: list[datetime], tz: ZoneInfo) -> list[date]:
    return [t.astimezone(tz).date() for t in instants]


# --- DAILY and the range bounds ---------------------------------------------------------------


def test_daily_midnight_in_shanghai_is_16_utc_the_day_before() -> None:
    got = reset_instants(daily(), SHANGHAI, utc(2026, 11, 20, 12), utc(2026, 11, 24, 12))
    assert got == [
        utc(2026, 11, 20, 16),
        utc(2026, 11, 21, 16),
        utc(2026, 11, 22, 16),
        utc(2026, 11, 23, 16),
    ]
    assert all(t.tzinfo is UTC for t in got)
    assert [t.astimezone(SHANGHAI).time() for t in got] == [time(0, 0)] * 4


def test_the_range_excludes_after_and_includes_until_exactly() -> None:
    first, last = utc(2026, 11, 20, 16), utc(2026, 11, 23, 16)
    assert reset_instants(daily(), SHANGHAI, first, last) == [
        utc(2026, 11, 21, 16),
        utc(2026, 11, 22, 16),
        utc(2026, 11, 23, 16),
    ]
    one_us = timedelta(microseconds=1)
    assert reset_instants(daily(), SHANGHAI, first - one_us, first) == [first]
    assert reset_instants(daily(), SHANGHAI, first, first + one_us) == []
    assert reset_instants(daily(), SHANGHAI, first - one_us, first - one_us) == []
    assert reset_instants(daily(), SHANGHAI, last, first) == []  # an inverted range is empty


def test_the_bounds_may_be_in_any_zone() -> None:
    plus8 = timezone(timedelta(hours=8))
    got = reset_instants(
        daily("08:15"),
        SHANGHAI,
        datetime(2026, 1, 1, tzinfo=plus8),
        datetime(2026, 1, 3, tzinfo=plus8),
    )
    assert got == [utc(2026, 1, 1, 0, 15), utc(2026, 1, 2, 0, 15)]


def test_disabled_gives_nothing() -> None:
    for config in (
        ResetConfig(),
        ResetConfig(enabled=False, schedule=ResetSchedule.AT_TIMES, at=[utc(2026, 1, 1)]),
        ResetConfig(enabled=False, schedule=ResetSchedule.WEEKLY, weekday=3),
    ):
        assert reset_instants(config, SHANGHAI, utc(2020, 1, 1), utc(2030, 1, 1)) == []


def test_naive_bounds_and_a_bad_limit_are_refused() -> None:
    with pytest.raises(ValueError, match="after"):
        reset_instants(daily(), SHANGHAI, datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="until"):
        reset_instants(daily(), SHANGHAI, utc(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="limit"):
        reset_instants(daily(), SHANGHAI, utc(2026, 1, 1), utc(2026, 1, 2), limit=0)


# --- WEEKLY and MONTHLY -----------------------------------------------------------------------


@pytest.mark.parametrize("weekday", range(1, 8))
def test_weekly_fires_on_its_weekday(weekday: int) -> None:
    # November 2026 starts on a Sunday: Monday is the 2nd, ..., Sunday the 1st.
    first = date(2026, 11, 1 + weekday % 7)
    got = reset_instants(
        weekly(weekday, "09:30"), SHANGHAI, utc(2026, 10, 31, 16), utc(2026, 11, 30, 16)
    )
    assert local_dates(got, SHANGHAI) == [
        first + timedelta(weeks=k)
        for k in range(5)
        if first + timedelta(weeks=k) <= date(2026, 11, 30)
    ]
    assert {t.astimezone(SHANGHAI).isoweekday() for t in got} == {weekday}
    assert {t.astimezone(SHANGHAI).time() for t in got} == {time(9, 30)}


def year_range(year: int) -> tuple[datetime, datetime]:
    """All of a Shanghai calendar year: (Dec 31 00:00 of the year before, Dec 31 23:59 local]."""
    return (
        datetime(year - 1, 12, 31, 23, 59, tzinfo=SHANGHAI),
        datetime(year, 12, 31, 23, 59, tzinfo=SHANGHAI),
    )


@pytest.mark.parametrize(
    ("year", "february"),
    [(2028, 29), (2027, 28), (2100, 28), (2000, 29)],  # 2100 is not a leap year, 2000 is
)
def test_monthly_31_uses_the_last_day_of_short_months(year: int, february: int) -> None:
    got = reset_instants(monthly(31), SHANGHAI, *year_range(year))
    ends = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    assert local_dates(got, SHANGHAI) == [date(year, m, d) for m, d in enumerate(ends, start=1)]
    assert got[1] == utc(year, 2, february - 1, 16)


def test_monthly_30_in_february() -> None:
    leap = reset_instants(monthly(30), SHANGHAI, utc(2028, 2, 1), utc(2028, 3, 1))
    plain = reset_instants(monthly(30), SHANGHAI, utc(2027, 2, 1), utc(2027, 3, 1))
    assert local_dates(leap, SHANGHAI) == [date(2028, 2, 29)]
    assert local_dates(plain, SHANGHAI) == [date(2027, 2, 28)]
    later = reset_instants(monthly(30, "12:00"), SHANGHAI, *year_range(2027))
    assert local_dates(later, SHANGHAI)[:4] == [
        date(2027, 1, 30),
        date(2027, 2, 28),
        date(2027, 3, 30),
        date(2027, 4, 30),
    ]


def test_monthly_first_of_the_month() -> None:
    got = reset_instants(monthly(1, "06:00"), SHANGHAI, *year_range(2026))
    assert local_dates(got, SHANGHAI) == [date(2026, m, 1) for m in range(1, 13)]
    assert got[0] == utc(2025, 12, 31, 22)


# --- AT_TIMES ---------------------------------------------------------------------------------


def test_at_times_aware_naive_duplicates_and_outside_the_range() -> None:
    plus8 = timezone(timedelta(hours=8))
    config = at_times(
        utc(2026, 6, 1, 4),  # inside
        datetime(2026, 6, 1, 12, tzinfo=plus8),  # the same instant again, written in +08:00
        datetime(2026, 6, 2, 9, 0),  # naive: 09:00 Shanghai = 01:00 UTC
        datetime(2026, 6, 2, 9, 0),  # duplicate naive
        utc(2026, 5, 1),  # before the range
        utc(2026, 7, 1, 0, 0, 1),  # after the range
        utc(2026, 5, 31, 16),  # exactly `after`: excluded
        utc(2026, 7, 1),  # exactly `until`: included
        utc(2026, 6, 3, 1, 0, 0, 500_000),  # sub-second: counted as its whole second
    )
    got = reset_instants(config, SHANGHAI, utc(2026, 5, 31, 16), utc(2026, 7, 1))
    assert got == [
        utc(2026, 6, 1, 4),
        utc(2026, 6, 2, 1),
        utc(2026, 6, 3, 1),
        utc(2026, 7, 1),
    ]


def test_at_times_naive_instants_follow_the_dst_rules() -> None:
    config = at_times(datetime(2026, 3, 8, 2, 30), datetime(2026, 11, 1, 1, 30))
    got = reset_instants(config, NEW_YORK, utc(2026, 1, 1), utc(2027, 1, 1))
    assert got == [utc(2026, 3, 8, 7), utc(2026, 11, 1, 5, 30)]


def test_at_times_cap_keeps_the_latest() -> None:
    config = at_times(*(utc(2026, 1, 1) + timedelta(hours=h) for h in range(10)))
    got = reset_instants(config, SHANGHAI, utc(2025, 1, 1), utc(2027, 1, 1), limit=3)
    assert got == [utc(2026, 1, 1, 7), utc(2026, 1, 1, 8), utc(2026, 1, 1, 9)]


# --- DST --------------------------------------------------------------------------------------


def test_new_york_spring_forward_gap_is_shifted_to_the_end_of_the_gap() -> None:
    # 2026-03-08 02:00 EST the clocks jump to 03:00 EDT: 02:30 never happens that day.
    got = reset_instants(daily("02:30"), NEW_YORK, utc(2026, 3, 7), utc(2026, 3, 10))
    assert got == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)]
    assert got[1].astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 0)


def test_new_york_fall_back_overlap_takes_the_first_occurrence() -> None:
    # 2026-11-01 02:00 EDT the clocks go back to 01:00 EST: 01:30 happens twice.
    got = reset_instants(daily("01:30"), NEW_YORK, utc(2026, 10, 31), utc(2026, 11, 3))
    assert got == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert got[1].astimezone(NEW_YORK).fold == 0  # 01:30 EDT, not 01:30 EST an hour later


def test_berlin_gap_and_overlap() -> None:
    # 2026-03-29 02:00 CET → 03:00 CEST; 2026-10-25 03:00 CEST → 02:00 CET.
    spring = reset_instants(daily("02:30"), BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    autumn = reset_instants(daily("02:30"), BERLIN, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert spring == [utc(2026, 3, 29, 1)]  # 03:00 CEST
    assert autumn == [utc(2026, 10, 25, 0, 30)]  # 02:30 CEST, the first of the two


def test_a_skipped_day_does_not_fire_twice() -> None:
    # Samoa skipped 2011-12-30 entirely (UTC-10 → UTC+14): that day's midnight is Dec 31's
    # midnight, one reset, not two.
    got = reset_instants(daily("00:00"), APIA, utc(2011, 12, 28), utc(2012, 1, 2))
    assert local_dates(got, APIA) == [
        date(2011, 12, 28),
        date(2011, 12, 29),
        date(2011, 12, 31),
        date(2012, 1, 1),
        date(2012, 1, 2),  # 2012-01-02 00:00 +14 is 2012-01-01 10:00 UTC, inside the range
    ]


# --- the cap and long ranges ------------------------------------------------------------------


def test_the_cap_keeps_the_most_recent_instants() -> None:
    after, until = utc(1990, 1, 1), utc(2026, 11, 24, 17)
    got = reset_instants(daily(), SHANGHAI, after, until)
    assert len(got) == 10_000
    assert got[-1] == utc(2026, 11, 24, 16)
    assert got[0] == utc(2026, 11, 24, 16) - timedelta(days=9_999)
    assert reset_instants(daily(), SHANGHAI, after, until, limit=3) == got[-3:]


def test_an_enormous_range_is_cheap() -> None:
    started = wallclock.perf_counter()
    got = reset_instants(daily("12:00"), NEW_YORK, utc(1, 1, 2), utc(9999, 12, 30))
    weekly_got = reset_instants(weekly(5), SHANGHAI, utc(1, 1, 2), utc(9999, 12, 30))
    monthly_got = reset_instants(monthly(31), BERLIN, utc(1, 1, 2), utc(9999, 12, 30))
    assert wallclock.perf_counter() - started < 5  # bounded by the cap, not by 3.6 million days
    assert len(got) == len(weekly_got) == len(monthly_got) == 10_000
    assert got[-1] == utc(9999, 12, 29, 17)


# --- instant_key ------------------------------------------------------------------------------


def test_instant_key_is_utc_to_the_second() -> None:
    assert instant_key(utc(2026, 11, 24, 16)) == "schedule:2026-11-24T16:00:00Z"
    assert instant_key(datetime(2026, 11, 25, tzinfo=SHANGHAI)) == "schedule:2026-11-24T16:00:00Z"
    assert instant_key(utc(2026, 11, 24, 16, 0, 0, 999_999)) == "schedule:2026-11-24T16:00:00Z"
    assert instant_key(utc(5, 1, 2, 3, 4, 5)) == "schedule:0005-01-02T03:04:05Z"
    with pytest.raises(ValueError):
        instant_key(datetime(2026, 11, 24, 16))


# --- properties -------------------------------------------------------------------------------

ZONES = [SHANGHAI, NEW_YORK, BERLIN, LORD_HOWE, APIA]
# Times in and around the usual transition hours (02:00-03:00 is the spring gap in New York and
# Berlin, 02:00-02:30 in Lord Howe; 01:00-02:00 repeats in the autumn), so that gaps and overlaps
# come up often rather than in one random example out of a hundred.
TIMES = st.one_of(
    st.sampled_from(["02:00", "02:15", "02:30", "02:59", "01:00", "01:30", "00:00", "03:00"]),
    st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
)
CALENDAR_CONFIGS = st.builds(
    ResetConfig,
    enabled=st.just(True),
    schedule=st.sampled_from([ResetSchedule.DAILY, ResetSchedule.WEEKLY, ResetSchedule.MONTHLY]),
    time=TIMES,
    # Sunday, the day most zones change their clocks, half of the time.
    weekday=st.one_of(st.just(7), st.integers(1, 7)),
    month_day=st.integers(1, 31),
)
MOMENTS = st.one_of(
    st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    # Days before the usual DST changes (and Samoa's skipped day), so short ranges meet them too.
    st.builds(
        datetime,
        st.integers(2000, 2039),
        st.sampled_from([3, 4, 9, 10, 11]),
        st.integers(1, 28),
        st.integers(0, 23),
        tzinfo=st.just(UTC),
    ),
    st.datetimes(datetime(2011, 12, 25), datetime(2011, 12, 31), timezones=st.just(UTC)),
)
SPANS = st.timedeltas(timedelta(0), timedelta(days=900))


def wall(t: datetime, tz: ZoneInfo) -> datetime:
    return t.astimezone(tz).replace(tzinfo=None, fold=0)


def _exists(day: date, at: time, tz: ZoneInfo) -> bool:
    """Whether this wall time happened on that day in that zone (not inside a gap)."""
    naive = datetime.combine(day, at)
    moment = naive.replace(tzinfo=tz)
    return moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def fires_on(config: ResetConfig, day: date) -> bool:
    if config.schedule == ResetSchedule.WEEKLY:
        return day.isoweekday() == config.weekday
    if config.schedule == ResetSchedule.MONTHLY:
        assert config.month_day is not None
        return day.day == min(config.month_day, calendar.monthrange(day.year, day.month)[1])
    return True


def hhmm(config: ResetConfig) -> time:
    return time.fromisoformat(config.time)


def oracle_resolve(local: datetime, tz: ZoneInfo) -> datetime:
    """The earliest instant whose local clock reads `local` or later, found the slow way."""
    occurrences = [
        u
        for u in (local.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
        if wall(u, tz) == local
    ]
    if occurrences:
        return min(occurrences)
    # A gap: walk minute by minute from well before it (transitions here are on whole minutes).
    u = local.replace(tzinfo=UTC) - timedelta(hours=15)
    u = u.replace(second=0, microsecond=0)
    while wall(u, tz) < local:
        u += timedelta(minutes=1)
    return u


def oracle(config: ResetConfig, tz: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """Walk every local date forward, a few days beyond each end, and keep what falls in range."""
    day, last = (
        wall(after, tz).date() - timedelta(days=3),
        wall(until, tz).date() + timedelta(days=3),
    )
    found: set[datetime] = set()
    while day <= last:
        if fires_on(config, day):
            t = oracle_resolve(datetime.combine(day, hhmm(config)), tz)
            if after < t <= until:
                found.add(t)
        day += timedelta(days=1)
    return sorted(found)


@settings(max_examples=300, deadline=None)
@given(
    config=CALENDAR_CONFIGS,
    tz=st.sampled_from(ZONES),
    after=MOMENTS,
    span=SPANS,
    split=st.floats(0, 1),
    limit=st.integers(1, 5),
)
def test_calendar_schedules_obey_their_laws(
    config: ResetConfig, tz: ZoneInfo, after: datetime, span: timedelta, split: float, limit: int
) -> None:
    until = after + span
    got = reset_instants(config, tz, after, until)

    # The same instants as the slow oracle, sorted, unique, in range, whole seconds, UTC.
    assert got == oracle(config, tz, after, until)
    assert all(a < b for a, b in pairwise(got))
    assert all(after < t <= until and t.tzinfo is UTC and t.microsecond == 0 for t in got)

    for t in got:
        local = t.astimezone(tz)
        if local.time() == hhmm(config):
            # On time: on the right day, and the first occurrence if the time happened twice;
            # or the right day was skipped whole (Apia, 2011-12-30) and its instant is the next
            # day's same wall time, the end of the gap.
            day_before = local.date() - timedelta(days=1)
            assert fires_on(config, local.date()) or (
                fires_on(config, day_before) and not _exists(day_before, hhmm(config), tz)
            )
            assert local.fold == 0
        else:
            # Shifted: a scheduled local time that did not exist, moved to the end of its gap.
            before = wall(t - timedelta(seconds=1), tz)
            candidates = [
                datetime.combine(before.date() + timedelta(days=k), hhmm(config))
                for k in range((local.date() - before.date()).days + 1)
            ]
            assert any(
                fires_on(config, c.date()) and before < c < wall(t, tz) for c in candidates
            ), (t, local)

    # Splitting the range anywhere gives the same instants: incremental application is exact.
    middle = after + span * split
    assert (
        reset_instants(config, tz, after, middle) + reset_instants(config, tz, middle, until) == got
    )
    # The cap keeps the most recent.
    assert reset_instants(config, tz, after, until, limit=limit) == got[-limit:]


@cache
def clock_changes(key: str, year: int) -> tuple[datetime, ...]:
    """The instants (UTC, to the minute) at which the zone's UTC offset changes during `year`."""
    tz = ZoneInfo(key)

    def offset(u: datetime) -> timedelta | None:
        return u.astimezone(tz).utcoffset()

    changes = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        after_day = day + timedelta(days=1)
        if offset(day) != offset(after_day):
            low, high = day, after_day  # offset(low) != offset(high): bisect to the minute
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset(middle) != offset(low) else (middle, high)
            changes.append(high.replace(second=0, microsecond=0))
        day = after_day
    return tuple(changes)


@st.composite
def zone_and_instants(draw: st.DrawFn) -> tuple[ZoneInfo, list[datetime]]:
    """A zone and AT_TIMES instants: aware, naive, and naive local times around clock changes."""
    tz = draw(st.sampled_from(ZONES))

    def near_a_change(year: int, index: int, minutes: int) -> datetime:
        changes = clock_changes(tz.key, year)
        if not changes:
            return datetime(year, 6, 1, 12)
        change = changes[index % len(changes)]
        # The local clock just before the change, then up to 90 minutes either way: that covers
        # the whole gap of a spring change and both readings of the repeated hour in the autumn.
        before = wall(change - timedelta(minutes=1), tz) + timedelta(minutes=1)
        return before + timedelta(minutes=minutes)

    instant = st.one_of(
        MOMENTS,
        st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1)),  # naive: local time
        st.builds(near_a_change, st.integers(2000, 2039), st.integers(0, 1), st.integers(-90, 90)),
    )
    return tz, draw(st.lists(instant, min_size=1, max_size=12))


@settings(max_examples=200, deadline=None)
@given(
    zone_at=zone_and_instants(),
    anchor=st.one_of(st.none(), st.integers(0, 11)),
    lead=st.timedeltas(timedelta(0), timedelta(days=3)),
    moment=MOMENTS,
    span=SPANS,
    split=st.floats(0, 1),
)
def test_at_times_obey_their_laws(
    zone_at: tuple[ZoneInfo, list[datetime]],
    anchor: int | None,
    lead: timedelta,
    moment: datetime,
    span: timedelta,
    split: float,
) -> None:
    tz, at = zone_at
    # Most ranges start shortly before one of the instants, so that they are not all outside it.
    if anchor is None:
        after = moment
    else:
        near = at[anchor % len(at)]
        after = (near if near.tzinfo else near.replace(tzinfo=UTC)) - lead
    config = at_times(*at)
    until = after + span
    got = reset_instants(config, tz, after, until)

    expected = {
        (oracle_resolve(a, tz) if a.tzinfo is None else a).replace(microsecond=0) for a in at
    }
    assert got == sorted(t for t in expected if after < t <= until)
    assert len({instant_key(t) for t in got}) == len(got)
    middle = after + span * split
    assert (
        reset_instants(config, tz, after, middle) + reset_instants(config, tz, middle, until) == got
    )


@settings(max_examples=60, deadline=None)
@given(
    tz=st.sampled_from([NEW_YORK, BERLIN]),
    year=st.integers(2000, 2039),
    minute=st.integers(0, 59),
)
def test_a_daily_reset_in_the_gap_hour_is_delayed_never_skipped(
    tz: ZoneInfo, year: int, minute: int
) -> None:
    # Both zones jump from 02:00 to 03:00 once a year, so 02:MM is missing on exactly one day.
    after = datetime(year, 1, 1, tzinfo=tz) - timedelta(microseconds=1)
    until = datetime(year, 12, 31, 23, 59, tzinfo=tz)
    got = reset_instants(daily(f"02:{minute:02d}"), tz, after, until)
    assert len(got) == (366 if calendar.isleap(year) else 365)
    shifted = [t.astimezone(tz) for t in got if t.astimezone(tz).time() != time(2, minute)]
    assert len(shifted) == 1
    assert shifted[0].time() == time(3, 0)
    assert len(set(local_dates(got, tz))) == len(got)  # one per local day


def test_a_monthly_day_that_was_skipped_whole_fires_at_the_end_of_the_gap() -> None:
    # Samoa skipped 2011-12-30: the 30th's midnight reset happens at the 31st's midnight.
    apia = ZoneInfo("Pacific/Apia")
    config = ResetConfig(enabled=True, schedule=ResetSchedule.MONTHLY, month_day=30)
    got = reset_instants(
        config,
        apia,
        datetime(2011, 12, 25, tzinfo=UTC),
        datetime(2011, 12, 31, tzinfo=UTC),
    )
    assert [t.astimezone(apia).replace(tzinfo=None) for t in got] == [datetime(2011, 12, 31)]
    assert not _exists(date(2011, 12, 30), time(0, 0), apia)
