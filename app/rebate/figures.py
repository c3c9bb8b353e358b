"""Running figures of each queue (blocks of waiting entries, daily money), changed as deltas in
the same transaction as the entries they sum, and the reads the progress screen makes of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count, Sum

from app.enums import EntryStatus, RewardOrder
from app.rebate.models import QueueBucket, QueueDay, QueueEntry

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
        postgres = conn.capabilities.dialect == "postgres"

        def marks(n: int) -> str:
            return ", ".join(f"${i}" if postgres else "?" for i in range(1, n + 1))

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


async def ahead_of(
    queue_id: int, number: int, reward_order: RewardOrder, conn: BaseDBAsyncClient | None = None
) -> tuple[int, int]:
    """(count, remaining) of the eligible waiting entries with a lower entry number (SPEC §12)."""
    completed_first = reward_order == RewardOrder.COMPLETED_FIRST
    count_field, fen_field = (
        ("completed_count", "completed_fen")
        if completed_first
        else ("waiting_count", "waiting_fen")
    )
    buckets = QueueBucket.filter(queue_id=queue_id, bucket__lt=bucket_of(number))
    entries = QueueEntry.filter(
        queue_id=queue_id,
        status=EntryStatus.WAITING,
        number__gte=bucket_of(number) * BUCKET_SIZE,
        number__lt=number,
    )
    if completed_first:
        entries = entries.filter(order_completed=True)
    if conn is not None:
        buckets, entries = buckets.using_db(conn), entries.using_db(conn)
    before = (await buckets.annotate(n=Sum(count_field), fen=Sum(fen_field)).values("n", "fen"))[0]
    within = (
        await entries.annotate(
            n=Count("id"), entitled=Sum("entitlement_fen"), rewarded=Sum("rewarded_fen")
        ).values("n", "entitled", "rewarded")
    )[0]
    count = int(before["n"] or 0) + int(within["n"] or 0)
    fen = int(before["fen"] or 0) + int(within["entitled"] or 0) - int(within["rewarded"] or 0)
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
