"""Running figures of each queue (blocks of waiting entries, daily money), changed as deltas in
the same transaction as the entries they sum, and the reads the progress screen makes of them."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from app.bulk import Params, insert_rows
from app.enums import EntryStatus, RewardOrder
from app.rebate.figure_cache import BucketSums, FigureCache, InMemoryFigureCache

BUCKET_SIZE = 256
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
        """Write the deltas, in three statements whatever their number; the caller holds the
        locks of every queue they touch."""
        changed: dict[int, dict[int, BucketSums]] = defaultdict(dict)
        for (queue_id, bucket), (wc, wf, cc, cf) in self.buckets.items():
            if wc or wf or cc or cf:
                changed[queue_id][bucket] = BucketSums(wc, wf, cc, cf)
        if changed:
            p = Params(conn)
            bumped = await conn.execute_query_dict(
                "UPDATE rebate_queue SET version = version + 1 "
                f"WHERE {p.among('id', sorted(changed))} RETURNING id, version",
                p.values,
            )
            for row in bumped:
                queue_id, version = int(row["id"]), int(row["version"]) - 1
                before = self.written.get(queue_id)
                merged = dict(before[2]) if before else {}
                for bucket, delta in changed[queue_id].items():
                    merged[bucket] = merged[bucket] + delta if bucket in merged else delta
                self.written[queue_id] = (before[0] if before else version, version + 1, merged)
        await insert_rows(
            conn,
            "queue_bucket",
            _BUCKET_COLUMNS,
            [
                (queue_id, bucket, *sums)
                for (queue_id, bucket), sums in sorted(self.buckets.items())
                if any(sums)
            ],
            on_conflict="(queue_id, bucket) DO UPDATE SET "
            "waiting_count = queue_bucket.waiting_count + excluded.waiting_count, "
            "waiting_fen = queue_bucket.waiting_fen + excluded.waiting_fen, "
            "completed_count = queue_bucket.completed_count + excluded.completed_count, "
            "completed_fen = queue_bucket.completed_fen + excluded.completed_fen",
        )
        await insert_rows(
            conn,
            "queue_day",
            _DAY_COLUMNS,
            [(queue_id, day, *sums) for (queue_id, day), sums in sorted(self.days.items())],
            on_conflict="(queue_id, day) DO UPDATE SET "
            "contributed_fen = queue_day.contributed_fen + excluded.contributed_fen, "
            "paid_out_fen = queue_day.paid_out_fen + excluded.paid_out_fen, "
            "returned_fen = queue_day.returned_fen + excluded.returned_fen",
        )
        self.buckets.clear()
        self.days.clear()


_BUCKET_COLUMNS = (
    ("queue_id", "int"),
    ("bucket", "bigint"),
    ("waiting_count", "bigint"),
    ("waiting_fen", "bigint"),
    ("completed_count", "bigint"),
    ("completed_fen", "bigint"),
)
_DAY_COLUMNS = (
    ("queue_id", "int"),
    ("day", "date"),
    ("contributed_fen", "bigint"),
    ("paid_out_fen", "bigint"),
    ("returned_fen", "bigint"),
)


_cache: FigureCache = InMemoryFigureCache()


# Whether a reader that finds the cache stale loads the queue's blocks into it. With the cache in
# this process's memory, yes. With Redis, no: loading holds every block of the queue in the
# reader for a moment, and the API process must cost the same behind a million entries as
# behind ten, so the reader sums the blocks in the database and the timers load the cache
# (`warm_figure_caches`, in the workers).
_readers_load = True


def use_figure_cache(cache: FigureCache, *, readers_load: bool = True) -> None:
    """Where block sums are cached: Redis when configured, else this process's memory."""
    global _cache, _readers_load
    _cache = cache
    _readers_load = readers_load


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


async def _load_blocks(queue_id: int, client: BaseDBAsyncClient) -> dict[int, BucketSums]:
    """Every block of a queue in one statement (one snapshot), cached at the version it read."""
    p = Params(client)
    rows = await client.execute_query_dict(
        "SELECT q.version AS version, b.bucket AS bucket, b.waiting_count AS wc, "
        "b.waiting_fen AS wf, b.completed_count AS cc, b.completed_fen AS cf "
        "FROM rebate_queue q LEFT JOIN queue_bucket b ON b.queue_id = q.id "
        f"WHERE q.id = {p(queue_id)}",
        p.values,
    )
    if not rows:
        return {}
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
    return blocks


async def _versions(queue_ids: list[int], client: BaseDBAsyncClient) -> dict[int, int]:
    p = Params(client)
    rows = await client.execute_query_dict(
        f"SELECT id, version FROM rebate_queue WHERE {p.among('id', queue_ids)}", p.values
    )
    return {int(row["id"]): int(row["version"]) for row in rows}


async def _cached_any(queue_id: int, bucket: int) -> tuple[int, BucketSums] | None:
    try:
        return await _cache.prefix_any(queue_id, bucket)
    except Exception:  # the cache is a copy: without it the database answers
        return None


async def _blocks_from_database(
    wanted: dict[int, list[int]], client: BaseDBAsyncClient
) -> dict[tuple[int, int], BucketSums]:
    """For each (queue, block) the cache could not give: the sums of the queue's blocks before
    it, loading the queue into the cache where readers load it, else summed by the database."""
    found: dict[tuple[int, int], BucketSums] = {}
    for queue_id, buckets in wanted.items():
        if not _readers_load:
            found.update(await _summed_in_database(queue_id, buckets, client))
            continue
        blocks = await _load_blocks(queue_id, client)
        for bucket in buckets:
            total = BucketSums(0, 0, 0, 0)
            for block, sums in blocks.items():
                if block < bucket:
                    total = total + sums
            found[(queue_id, bucket)] = total
    return found


async def _summed_in_database(
    queue_id: int, buckets: list[int], client: BaseDBAsyncClient
) -> dict[tuple[int, int], BucketSums]:
    """The sums of the blocks before each bucket, added up by the database in one statement."""
    p = Params(client)
    parts = [
        f"SELECT {index} AS k, COALESCE(SUM(waiting_count), 0) AS wc, "
        "COALESCE(SUM(waiting_fen), 0) AS wf, COALESCE(SUM(completed_count), 0) AS cc, "
        "COALESCE(SUM(completed_fen), 0) AS cf FROM queue_bucket "
        f"WHERE queue_id = {p(queue_id)} AND bucket < {p(bucket)}"
        for index, bucket in enumerate(buckets)
    ]
    rows = await client.execute_query_dict(" UNION ALL ".join(parts), p.values)
    return {
        (queue_id, buckets[int(r["k"])]): BucketSums(
            int(r["wc"]), int(r["wf"]), int(r["cc"]), int(r["cf"])
        )
        for r in rows
    }


async def warm_figure_caches() -> int:
    """Load into the cache every queue with waiting entries that it lacks or holds stale; the
    number loaded. A timer's job: a reader never waits for it."""
    client = connections.get("default")
    rows = await client.execute_query_dict(
        "SELECT id, version FROM rebate_queue WHERE waiting_count > 0 ORDER BY id"
    )
    loaded = 0
    for row in rows:
        queue_id, version = int(row["id"]), int(row["version"])
        try:
            cached = await _cache.prefix_any(queue_id, 0)
        except Exception:
            return loaded  # the cache is unreachable: the readers use the database
        if cached is None or cached[0] != version:
            await _load_blocks(queue_id, client)
            loaded += 1
    return loaded


async def _within_blocks(
    places: list[tuple[int, int]], completed_first: bool, client: BaseDBAsyncClient
) -> list[tuple[int, int]]:
    """(count, remaining) of the eligible waiting entries from the start of each place's block
    up to its number, for all places in one statement."""
    p = Params(client)
    completed = " AND order_completed = TRUE" if completed_first else ""
    parts = [
        f"SELECT {index} AS k, COUNT(*) AS n, "
        "COALESCE(SUM(entitlement_fen - rewarded_fen), 0) AS fen FROM queue_entry "
        f"WHERE queue_id = {p(queue_id)} AND status = {p(EntryStatus.WAITING.value)} "
        f"AND number >= {p(bucket_of(number) * BUCKET_SIZE)} AND number < {p(number)}{completed}"
        for index, (queue_id, number) in enumerate(places)
    ]
    rows = await client.execute_query_dict(" UNION ALL ".join(parts), p.values)
    within = [(0, 0)] * len(places)
    for row in rows:
        within[int(row["k"])] = (int(row["n"]), int(row["fen"]))
    return within


async def ahead_of_many(
    places: list[tuple[int, int]], reward_order: RewardOrder
) -> dict[tuple[int, int], tuple[int, int]]:
    """For each (queue, entry number): (count, remaining) of the eligible waiting entries with a
    lower number (SPEC §12). A bounded number of statements however many places are asked."""
    distinct = sorted(set(places))
    if not distinct:
        return {}
    completed_first = reward_order == RewardOrder.COMPLETED_FIRST
    wanted: dict[int, set[int]] = defaultdict(set)
    for queue_id, number in distinct:
        wanted[queue_id].add(bucket_of(number))
    client = connections.get("default")
    blocks = sorted((queue_id, b) for queue_id, buckets in wanted.items() for b in buckets)
    # The database (on pooled connections) and the cache are asked at once, so the screen waits
    # for one round trip.
    versions, within, *cached = await asyncio.gather(
        _versions(sorted(wanted), client),
        _within_blocks(distinct, completed_first, client),
        *(_cached_any(queue_id, bucket) for queue_id, bucket in blocks),
    )
    # A cached sum is kept only when its version is the one the database gave.
    before: dict[tuple[int, int], BucketSums] = {}
    missing: dict[int, list[int]] = defaultdict(list)
    for (queue_id, bucket), hit in zip(blocks, cached, strict=True):
        if hit is not None and hit[0] == versions.get(queue_id):
            before[(queue_id, bucket)] = hit[1]
        elif queue_id in versions:
            missing[queue_id].append(bucket)
    before.update(await _blocks_from_database(missing, client))
    answer: dict[tuple[int, int], tuple[int, int]] = {}
    for (queue_id, number), (count, fen) in zip(distinct, within, strict=True):
        sums = before.get((queue_id, bucket_of(number)), BucketSums(0, 0, 0, 0))
        if completed_first:
            answer[(queue_id, number)] = (sums.completed_count + count, sums.completed_fen + fen)
        else:
            answer[(queue_id, number)] = (sums.waiting_count + count, sums.waiting_fen + fen)
    return answer


async def ahead_of(queue_id: int, number: int, reward_order: RewardOrder) -> tuple[int, int]:
    """(count, remaining) of the eligible waiting entries with a lower entry number (SPEC §12)."""
    return (await ahead_of_many([(queue_id, number)], reward_order))[(queue_id, number)]


async def daily_inflows(queue_ids: list[int], today: date) -> dict[int, float]:
    """Per queue: contributions per day over the last week, or over the queue's life when it is
    younger (0 when nothing came in). One statement for any number of queues."""
    distinct = sorted(set(queue_ids))
    if not distinct:
        return {}
    client = connections.get("default")
    since = today - timedelta(days=INFLOW_DAYS - 1)
    p = Params(client)
    rows = await client.execute_query_dict(
        "SELECT queue_id AS queue_id, MIN(day) AS first_day, "
        f"SUM(CASE WHEN day >= {p(since)} THEN contributed_fen ELSE 0 END) AS recent "
        f"FROM queue_day WHERE day <= {p(today)} AND {p.among('queue_id', distinct)} "
        "GROUP BY queue_id",
        p.values,
    )
    inflows = dict.fromkeys(distinct, 0.0)
    for row in rows:
        recent = int(row["recent"] or 0)
        if recent == 0:
            continue
        first = row["first_day"]
        first_day = first if isinstance(first, date) else date.fromisoformat(str(first)[:10])
        start = max(since, first_day)
        inflows[int(row["queue_id"])] = recent / ((today - start).days + 1)
    return inflows
