"""Running figures of each queue (blocks of waiting entries, daily money), changed as deltas in
the same transaction as the entries they sum, and the reads the progress screen makes of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count, Sum

from app.enums import EntryStatus, RewardOrder
from app.rebate.figure_cache import BucketSums, FigureCache, InMemoryFigureCache
from app.rebate.models import Queue, QueueDay, QueueEntry

BUCKET_SIZE = 1024
INFLOW_DAYS = 7


def bucket_of(number: int) -> int:
    return number // BUCKET_SIZE


@dataclass(slots=True)
class FigureDeltas:
    """Changes to add to the figures when the transaction writes back."""

    buckets: dict[tuple[int, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    days: dict[tuple[int, date], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    # What flush wrote, per queue: (version before, version after, block deltas), to be handed
    # to the figure cache once the transaction has committed.
    written: dict[int, tuple[int, int, dict[int, BucketSums]]] = field(default_factory=dict)

    def waiting(self, queue_id: int, number: int, count: int, fen: int, *, completed: bool) -> None:
        """A waiting entry appeared (+1), left (−1) or its remaining changed by `fen`."""
        row = self.buckets[(queue_id, bucket_of(number))]
        row[0] += count
        row[1] += fen
        if completed:
            row[2] += count
            row[3] += fen

    def became_eligible(self, queue_id: int, number: int, remaining_fen: int) -> None:
        """A waiting entry's order completed: it now counts under COMPLETED_FIRST too."""
        row = self.buckets[(queue_id, bucket_of(number))]
        row[2] += 1
        row[3] += remaining_fen

    def money(
        self, queue_id: int, day: date, contributed: int, paid_out: int, returned: int
    ) -> None:
        row = self.days[(queue_id, day)]
        row[0] += contributed
        row[1] += paid_out
        row[2] += returned

    async def flush(self, conn: BaseDBAsyncClient) -> None:
        """Write the deltas; the caller holds the locks of every queue they touch."""
        postgres = conn.capabilities.dialect == "postgres"

        def marks(n: int) -> str:
            return ", ".join(f"${i}" if postgres else "?" for i in range(1, n + 1))

        changed: dict[int, dict[int, BucketSums]] = defaultdict(dict)
        for (queue_id, bucket), (wc, wf, cc, cf) in self.buckets.items():
            if wc or wf or cc or cf:
                changed[queue_id][bucket] = BucketSums(wc, wf, cc, cf)
        for queue_id, deltas in sorted(changed.items()):
            (version,) = (
                await Queue.filter(id=queue_id).using_db(conn).values_list("version", flat=True)
            )
            await Queue.filter(id=queue_id).using_db(conn).update(version=version + 1)
            before = self.written.get(queue_id)
            merged = dict(before[2]) if before else {}
            for bucket, delta in deltas.items():
                merged[bucket] = merged[bucket] + delta if bucket in merged else delta
            self.written[queue_id] = (before[0] if before else version, version + 1, merged)

        for (queue_id, bucket), (wc, wf, cc, cf) in sorted(self.buckets.items()):
            if not (wc or wf or cc or cf):
                continue
            await conn.execute_query(
                "INSERT INTO queue_bucket (queue_id, bucket, waiting_count, waiting_fen, "
                f"completed_count, completed_fen) VALUES ({marks(6)}) "
                "ON CONFLICT (queue_id, bucket) DO UPDATE SET "
                "waiting_count = queue_bucket.waiting_count + excluded.waiting_count, "
                "waiting_fen = queue_bucket.waiting_fen + excluded.waiting_fen, "
                "completed_count = queue_bucket.completed_count + excluded.completed_count, "
                "completed_fen = queue_bucket.completed_fen + excluded.completed_fen",
                [queue_id, bucket, wc, wf, cc, cf],
            )
        for (queue_id, day), (contributed, paid_out, returned) in sorted(self.days.items()):
            await conn.execute_query(
                "INSERT INTO queue_day "
                "(queue_id, day, contributed_fen, paid_out_fen, returned_fen) "
                f"VALUES ({marks(5)}) ON CONFLICT (queue_id, day) DO UPDATE SET "
                "contributed_fen = queue_day.contributed_fen + excluded.contributed_fen, "
                "paid_out_fen = queue_day.paid_out_fen + excluded.paid_out_fen, "
                "returned_fen = queue_day.returned_fen + excluded.returned_fen",
                [queue_id, day, contributed, paid_out, returned],
            )
        self.buckets.clear()
        self.days.clear()


_cache: FigureCache = InMemoryFigureCache()


def use_figure_cache(cache: FigureCache) -> None:
    """Where block sums are cached: Redis when configured, else this process's memory."""
    global _cache
    _cache = cache


async def publish(figures: FigureDeltas) -> None:
    """After the commit: bring the cached block sums to the new versions (or drop them)."""
    for queue_id, (before, after, deltas) in figures.written.items():
        try:
            await _cache.apply(queue_id, before, after, deltas)
        except Exception:  # the cache is a copy: losing it costs one rebuild, never a wrong sum
            await _drop_quietly(queue_id)
    figures.written.clear()


async def _drop_quietly(queue_id: int) -> None:
    try:
        await _cache.drop(queue_id)
    except Exception:
        return


async def _blocks_before(queue_id: int, bucket: int, conn: BaseDBAsyncClient | None) -> BucketSums:
    """Sums of the blocks before `bucket`: from the cache at the database's version, or read
    from the database in one statement (one snapshot) and cached at that version."""
    version_query = Queue.filter(id=queue_id)
    if conn is not None:
        version_query = version_query.using_db(conn)
    versions = await version_query.values_list("version", flat=True)
    if not versions:
        return BucketSums(0, 0, 0, 0)
    try:
        cached = await _cache.prefix(queue_id, versions[0], bucket)
    except Exception:
        cached = None
    if cached is not None:
        return cached
    client = conn or connections.get("default")
    mark = "$1" if client.capabilities.dialect == "postgres" else "?"
    rows = await client.execute_query_dict(
        "SELECT q.version AS version, b.bucket AS bucket, b.waiting_count AS wc, "
        "b.waiting_fen AS wf, b.completed_count AS cc, b.completed_fen AS cf "
        "FROM rebate_queue q LEFT JOIN queue_bucket b ON b.queue_id = q.id "
        f"WHERE q.id = {mark}",
        [queue_id],
    )
    version = int(rows[0]["version"])
    blocks = {
        int(r["bucket"]): BucketSums(int(r["wc"]), int(r["wf"]), int(r["cc"]), int(r["cf"]))
        for r in rows
        if r["bucket"] is not None
    }
    try:
        await _cache.load(queue_id, version, blocks)
    except Exception:
        await _drop_quietly(queue_id)
    total = BucketSums(0, 0, 0, 0)
    for block, sums in blocks.items():
        if block < bucket:
            total = total + sums
    return total


async def ahead_of(
    queue_id: int, number: int, reward_order: RewardOrder, conn: BaseDBAsyncClient | None = None
) -> tuple[int, int]:
    """(count, remaining) of the eligible waiting entries with a lower entry number (SPEC §12)."""
    completed_first = reward_order == RewardOrder.COMPLETED_FIRST
    before = await _blocks_before(queue_id, bucket_of(number), conn)
    entries = QueueEntry.filter(
        queue_id=queue_id,
        status=EntryStatus.WAITING,
        number__gte=bucket_of(number) * BUCKET_SIZE,
        number__lt=number,
    )
    if completed_first:
        entries = entries.filter(order_completed=True)
    if conn is not None:
        entries = entries.using_db(conn)
    within = (
        await entries.annotate(
            n=Count("id"), entitled=Sum("entitlement_fen"), rewarded=Sum("rewarded_fen")
        ).values("n", "entitled", "rewarded")
    )[0]
    count = before.completed_count if completed_first else before.waiting_count
    fen = before.completed_fen if completed_first else before.waiting_fen
    count += int(within["n"] or 0)
    fen += int(within["entitled"] or 0) - int(within["rewarded"] or 0)
    return count, fen


async def daily_inflow_fen(queue_id: int, today: date) -> float:
    """Contributions per day over the last week, or over the queue's life when it is younger."""
    since = today - timedelta(days=INFLOW_DAYS - 1)
    rows = await QueueDay.filter(queue_id=queue_id, day__gte=since, day__lte=today).values_list(
        "day", "contributed_fen"
    )
    total = sum(fen for _, fen in rows)
    if total == 0:
        return 0.0
    first = (
        await QueueDay.filter(queue_id=queue_id)
        .order_by("day")
        .first()
        .values_list("day", flat=True)
    )
    start = max(since, first) if first else since
    return total / ((today - start).days + 1)
