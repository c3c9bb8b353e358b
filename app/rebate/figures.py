"""Running figures of each queue (blocks of waiting entries, daily money), changed as deltas in
the same transaction as the entries they sum, and the reads the progress screen makes of them."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from app.bulk import Params, insert_rows
from app.enums import EntryStatus, RewardOrder
from app.rebate.answers import answers
from app.rebate.figure_cache import BucketSums, FigureCache, InMemoryFigureCache

Item = TypeVar("Item", int, tuple[int, int])

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
        # Every queue touched gets a new version, even when its changes cancel out: an entry
        # paid in full and one joining the same block leave the block's sums as they were, but
        # not the figures of the entries between them, and the answers kept under a version
        # (`answers`) must never outlive a change.
        touched = {queue_id for queue_id, _ in self.buckets} | {q for q, _ in self.days}
        if touched:
            p = Params(conn)
            bumped = await conn.execute_query_dict(
                "UPDATE rebate_queue SET version = version + 1 "
                f"WHERE {p.among('id', sorted(touched))} RETURNING id, version",
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


async def _load_blocks(
    queue_id: int, client: BaseDBAsyncClient
) -> tuple[int | None, dict[int, BucketSums]]:
    """(version, every block) of a queue in one statement (one snapshot), cached at that
    version."""
    p = Params(client)
    rows = await client.execute_query_dict(
        "SELECT q.version AS version, b.bucket AS bucket, b.waiting_count AS wc, "
        "b.waiting_fen AS wf, b.completed_count AS cc, b.completed_fen AS cf "
        "FROM rebate_queue q LEFT JOIN queue_bucket b ON b.queue_id = q.id "
        f"WHERE q.id = {p(queue_id)}",
        p.values,
    )
    if not rows:
        return None, {}
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
    return version, blocks


async def _cached_any(queue_id: int, bucket: int) -> tuple[int, BucketSums] | None:
    try:
        return await _cache.prefix_any(queue_id, bucket)
    except Exception:  # the cache is a copy: without it the database answers
        return None


async def _blocks_from_database(
    wanted: dict[int, list[int]], client: BaseDBAsyncClient
) -> tuple[dict[tuple[int, int], BucketSums], dict[int, int]]:
    """For each (queue, block) the cache could not give: the sums of the queue's blocks before
    it, loading the queue into the cache where readers load it, else summed by the database;
    and the version each queue's sums were read at."""
    found: dict[tuple[int, int], BucketSums] = {}
    versions: dict[int, int] = {}
    for queue_id, buckets in wanted.items():
        if not _readers_load:
            version, sums = await _summed_in_database(queue_id, buckets, client)
            found.update(sums)
        else:
            version, blocks = await _load_blocks(queue_id, client)
            for bucket in buckets:
                total = BucketSums(0, 0, 0, 0)
                for block, block_sums in blocks.items():
                    if block < bucket:
                        total = total + block_sums
                found[(queue_id, bucket)] = total
        if version is not None:
            versions[queue_id] = version
    return found, versions


async def _summed_in_database(
    queue_id: int, buckets: list[int], client: BaseDBAsyncClient
) -> tuple[int | None, dict[tuple[int, int], BucketSums]]:
    """(version, the sums of the blocks before each bucket), added up by the database in one
    statement."""
    p = Params(client)
    parts = [
        f"SELECT {index} AS k, COALESCE(SUM(waiting_count), 0) AS wc, "
        "COALESCE(SUM(waiting_fen), 0) AS wf, COALESCE(SUM(completed_count), 0) AS cc, "
        "COALESCE(SUM(completed_fen), 0) AS cf FROM queue_bucket "
        f"WHERE queue_id = {p(queue_id)} AND bucket < {p(bucket)}"
        for index, bucket in enumerate(buckets)
    ]
    # The queue's version comes in the same statement, so from the same snapshot.
    parts.append(_versions_part(p, [queue_id], ("wc", "wf", "cc", "cf")))
    rows = await client.execute_query_dict(" UNION ALL ".join(parts), p.values)
    versions: dict[int, int] = {}
    sums: dict[tuple[int, int], BucketSums] = {}
    for r in rows:
        k = int(r["k"])
        if not _read_version(k, r["wc"], versions):
            sums[(queue_id, buckets[k])] = BucketSums(
                int(r["wc"]), int(r["wf"]), int(r["cc"]), int(r["cf"])
            )
    return versions.get(queue_id), sums


def _versions_part(p: Params, queue_ids: list[int], columns: tuple[str, ...]) -> str:
    """A part of a UNION ALL whose other parts number their rows k = 0, 1, ...: each queue's
    version, in the statement's own snapshot, as a row k = -1 - queue id with the version in the
    first of `columns` and 0 in the others."""
    first, *others = columns
    zeros = "".join(f", 0 AS {column}" for column in others)
    return (
        f"SELECT -1 - id AS k, version AS {first}{zeros} FROM rebate_queue "
        f"WHERE {p.among('id', queue_ids)}"
    )


def _read_version(k: int, value: Any, versions: dict[int, int]) -> bool:
    """Whether row `k` of such a statement is a version (then kept in `versions`)."""
    if k >= 0:
        return False
    versions[-1 - k] = int(value)
    return True


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
) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """(count, remaining) of the eligible waiting entries from the start of each place's block
    up to its number, and the version of every queue, all in one statement: one snapshot."""
    p = Params(client)
    completed = " AND order_completed = TRUE" if completed_first else ""
    parts = [
        f"SELECT {index} AS k, COUNT(*) AS n, "
        "COALESCE(SUM(entitlement_fen - rewarded_fen), 0) AS fen FROM queue_entry "
        f"WHERE queue_id = {p(queue_id)} AND status = {p(EntryStatus.WAITING.value)} "
        f"AND number >= {p(bucket_of(number) * BUCKET_SIZE)} AND number < {p(number)}{completed}"
        for index, (queue_id, number) in enumerate(places)
    ]
    parts.append(_versions_part(p, sorted({q for q, _ in places}), ("n", "fen")))
    rows = await client.execute_query_dict(" UNION ALL ".join(parts), p.values)
    within = [(0, 0)] * len(places)
    versions: dict[int, int] = {}
    for row in rows:
        k = int(row["k"])
        if not _read_version(k, row["n"], versions):
            within[k] = (int(row["n"]), int(row["fen"]))
    return within, versions


async def ahead_of_many(
    places: list[tuple[int, int]],
    reward_order: RewardOrder,
    versions: Mapping[int, int] | None = None,
) -> dict[tuple[int, int], tuple[int, int]]:
    """For each (queue, entry number): (count, remaining) of the eligible waiting entries with a
    lower number (SPEC §12). A bounded number of statements however many places are asked, and
    none for a place whose queue's version the caller read (`versions`) and whose answer at that
    version is kept."""
    completed_first = reward_order == RewardOrder.COMPLETED_FIRST
    answer, distinct = _kept_and_missing(
        places, versions, lambda place, version: _ahead_key(place, version, completed_first)
    )
    if not distinct:
        return answer
    wanted: dict[int, set[int]] = defaultdict(set)
    for queue_id, number in distinct:
        wanted[queue_id].add(bucket_of(number))
    client = connections.get("default")
    blocks = sorted((queue_id, b) for queue_id, buckets in wanted.items() for b in buckets)
    # The database (on pooled connections) and the cache are asked at once, so the screen waits
    # for one round trip.
    (within, read), *cached = await asyncio.gather(
        _within_blocks(distinct, completed_first, client),
        *(_cached_any(queue_id, bucket) for queue_id, bucket in blocks),
    )
    # A cached sum is kept only when its version is the one the database gave.
    before: dict[tuple[int, int], BucketSums] = {}
    missing: dict[int, list[int]] = defaultdict(list)
    for (queue_id, bucket), hit in zip(blocks, cached, strict=True):
        if hit is not None and hit[0] == read.get(queue_id):
            before[(queue_id, bucket)] = hit[1]
        elif queue_id in read:
            missing[queue_id].append(bucket)
    summed, summed_at = await _blocks_from_database(missing, client)
    before.update(summed)
    for (queue_id, number), (count, fen) in zip(distinct, within, strict=True):
        sums = before.get((queue_id, bucket_of(number)), BucketSums(0, 0, 0, 0))
        if completed_first:
            found = (sums.completed_count + count, sums.completed_fen + fen)
        else:
            found = (sums.waiting_count + count, sums.waiting_fen + fen)
        answer[(queue_id, number)] = found
        version = read.get(queue_id)
        # Kept only when every part was read at one version: the blocks summed by the database
        # may have been read after a newer commit than the partial block.
        if version is not None and summed_at.get(queue_id, version) == version:
            answers.put(_ahead_key((queue_id, number), version, completed_first), found)
    return answer


def _kept_and_missing(
    items: Iterable[Item], versions: Mapping[int, int] | None, key: Callable[[Item, int], tuple]
) -> tuple[dict[Item, Any], list[Item]]:
    """The answers kept for `items` at their queue's version as the caller read it, and the
    items without one (all of them when the caller knows no versions), each item once."""
    kept: dict[Item, Any] = {}
    missing: list[Item] = []
    for item in sorted(set(items)):
        queue_id = item[0] if isinstance(item, tuple) else item
        version = versions.get(queue_id) if versions else None
        found = None if version is None else answers.get(key(item, version))
        if found is None:
            missing.append(item)
        else:
            kept[item] = found
    return kept, missing


def _ahead_key(place: tuple[int, int], version: int, completed_first: bool) -> tuple:
    return ("ahead", place[0], version, place[1], completed_first)


async def ahead_of(queue_id: int, number: int, reward_order: RewardOrder) -> tuple[int, int]:
    """(count, remaining) of the eligible waiting entries with a lower entry number (SPEC §12)."""
    return (await ahead_of_many([(queue_id, number)], reward_order))[(queue_id, number)]


async def daily_inflows(
    queue_ids: list[int], today: date, versions: Mapping[int, int] | None = None
) -> dict[int, float]:
    """Per queue: contributions per day over the last week, or over the queue's life when it is
    younger (0 when nothing came in). One statement for any number of queues, and none for a
    queue whose version the caller read (`versions`) and whose inflow at it is kept."""
    inflows, distinct = _kept_and_missing(
        queue_ids, versions, lambda queue_id, version: ("inflow", queue_id, version, today)
    )
    if not distinct:
        return inflows
    client = connections.get("default")
    since = today - timedelta(days=INFLOW_DAYS - 1)
    p = Params(client)
    # Each queue's version comes from the same snapshot as its days.
    rows = await client.execute_query_dict(
        "SELECT q.id AS queue_id, q.version AS version, MIN(d.day) AS first_day, "
        f"SUM(CASE WHEN d.day >= {p(since)} THEN d.contributed_fen ELSE 0 END) AS recent "
        f"FROM rebate_queue q LEFT JOIN queue_day d ON d.queue_id = q.id AND d.day <= {p(today)} "
        f"WHERE {p.among('q.id', distinct)} GROUP BY q.id, q.version",
        p.values,
    )
    inflows.update(dict.fromkeys(distinct, 0.0))
    for row in rows:
        queue_id = int(row["queue_id"])
        recent = int(row["recent"] or 0)
        if recent:
            first = row["first_day"]
            first_day = first if isinstance(first, date) else date.fromisoformat(str(first)[:10])
            start = max(since, first_day)
            inflows[queue_id] = recent / ((today - start).days + 1)
        answers.put(("inflow", queue_id, int(row["version"]), today), inflows[queue_id])
    return inflows


def forget_answers() -> None:
    """Drop every kept answer (a test empties the database under a running process)."""
    answers.clear()
