"""A queue of any length in PostgreSQL, fast: one real settled order, cloned in the database.

The first order goes through the services (create, pay, settle), so every column of its order,
line and entry is what the product writes. `generate_series` then copies those rows with new ids,
numbers and order numbers, and the queue's figures (waiting count, liability, block sums) are
recomputed from the entries, as settlement would have kept them. The books are not cloned: the
queue is for measuring reads, and the benchmarks that measure money use the real settlement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.bench.infra import BenchEnv, create_database, drop_database
from app.bench.report import Progress
from app.catalog.service import upsert_product
from app.db import close_db, init_db, migrate_db
from app.members.service import login_with_openid
from app.orders.models import Order
from app.orders.service import LineRequest, create_order, record_payment
from app.rebate.figures import BUCKET_SIZE
from app.rebate.models import QueueEntry
from app.rebate.service import settle_orders
from app.wechat.pay_notify import PaymentNotice

CHUNK = 100_000


@dataclass(frozen=True, slots=True)
class SeededQueue:
    queue_id: int
    waiting: int
    owner_id: int  # the consumer whose entries are the last ones of the queue
    owner_entry_ids: list[int]  # oldest first: the first is behind everyone else


async def paid_order(user_id: int, product_id: int, transaction_id: str) -> Order:
    """A one-line order of `product_id`, paid as a verified WeChat notification records it."""
    now = datetime.now(UTC)
    order = await create_order(user_id, [LineRequest(product_id, 1)], now=now)
    await record_payment(
        PaymentNotice(
            out_trade_no=order.out_trade_no,
            transaction_id=transaction_id,
            total_fee=order.payable_fen,
            cash_fee=order.payable_fen,
            appid="bench",
            mch_id="bench",
            openid="bench",
            time_end=now,
            raw={},
        )
    )
    return order


async def _paid_and_settled(user_id: int, product_id: int, tag: str) -> int:
    order = await paid_order(user_id, product_id, f"seed{tag}")
    await settle_orders([order.id], now=datetime.now(UTC))
    return order.id


async def table_columns(conn: BaseDBAsyncClient, table: str) -> list[str]:
    rows = await conn.execute_query_dict(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
        "ORDER BY ordinal_position",
        [table],
    )
    return [row["column_name"] for row in rows]


async def copy_rows(
    conn: BaseDBAsyncClient,
    table: str,
    where: str,
    first: int,
    last: int,
    overrides: dict[str, str],
) -> None:
    """Copies of the rows of `table` matching `where` (over t) for g in first..last, with
    `overrides` (SQL over t and g) for some columns: a table filled in one statement."""
    columns = await table_columns(conn, table)
    values = [overrides.get(column, f"t.{column}") for column in columns]
    await conn.execute_query(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "
        f"FROM {table} t, generate_series({first}, {last}) g WHERE {where} ORDER BY g"
    )


async def max_id(conn: BaseDBAsyncClient, table: str) -> int:
    rows = await conn.execute_query_dict(f"SELECT COALESCE(MAX(id), 0) AS top FROM {table}")
    return int(rows[0]["top"])


async def seed_waiting_queue(
    waiting: int, *, owner_entries: int = 20, progress: Progress | None = None
) -> SeededQueue:
    """A mall queue of `waiting` waiting entries, the last `owner_entries` of one consumer."""
    if connections.get("default").capabilities.dialect != "postgres":
        raise RuntimeError("the seeded queue is built with PostgreSQL's generate_series")
    product = await upsert_product(
        # ¥1 a line: a million of them ahead stay within the API's 32-bit `Int` fen amounts.
        {"name": "基准礼盒", "price_fen": 100, "rebate": {"enabled": True}}
    )
    crowd = await login_with_openid("bench-crowd", "seed")
    owner = await login_with_openid("bench-owner", "seed")
    template_order = await _paid_and_settled(crowd.id, product.id, "template")
    template = await QueueEntry.get(order_id=template_order)
    conn = connections.get("default")
    clones = waiting - 1
    order_base = await max_id(conn, "app_order")
    line_base = await max_id(conn, "order_line")
    entry_base = await max_id(conn, "queue_entry")
    owner_from = clones - owner_entries + 1  # the clones that are the owner's
    user = f"CASE WHEN g >= {owner_from} THEN {owner.id} ELSE {crowd.id} END"
    done = 0
    for first in range(1, clones + 1, CHUNK):
        last = min(clones, first + CHUNK - 1)
        async with in_transaction() as conn:
            # The copies reference rows that exist (the template's, and the copies of this
            # chunk): checking each reference row by row would take most of the time.
            await conn.execute_query("SET LOCAL session_replication_role = replica")
            await conn.execute_query("SET LOCAL synchronous_commit = off")
            await copy_rows(
                conn,
                "app_order",
                f"t.id = {template.order_id}",
                first,
                last,
                {
                    "id": f"{order_base} + g",
                    "out_trade_no": "'SEED' || lpad(g::text, 12, '0')",
                    "transaction_id": "'seed' || g",
                    "user_id": user,
                },
            )
            await copy_rows(
                conn,
                "order_line",
                f"t.id = {template.line_id}",
                first,
                last,
                {"id": f"{line_base} + g", "order_id": f"{order_base} + g"},
            )
            await copy_rows(
                conn,
                "queue_entry",
                f"t.id = {template.id}",
                first,
                last,
                {
                    "id": f"{entry_base} + g",
                    "number": "t.number + g",
                    "order_id": f"{order_base} + g",
                    "line_id": f"{line_base} + g",
                    "user_id": user,
                },
            )
        done = last
        if progress is not None:
            progress.update(done, clones, "seeding the queue")
    conn = connections.get("default")
    for table in ("app_order", "order_line", "queue_entry"):
        await conn.execute_query(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
        )
    await _recompute_figures(conn, template.queue_id)
    await conn.execute_query("ANALYZE")
    owner_ids = await _owner_entries(owner.id)
    return SeededQueue(
        queue_id=template.queue_id, waiting=waiting, owner_id=owner.id, owner_entry_ids=owner_ids
    )


async def _owner_entries(owner_id: int) -> list[int]:
    return list(
        await QueueEntry.filter(user_id=owner_id).order_by("id").values_list("id", flat=True)
    )


async def _recompute_figures(conn: BaseDBAsyncClient, queue_id: int) -> None:
    """The queue's running figures as settlement keeps them, from its entries."""
    await conn.execute_query("DELETE FROM queue_bucket WHERE queue_id = $1", [queue_id])
    await conn.execute_query(
        "INSERT INTO queue_bucket (queue_id, bucket, waiting_count, waiting_fen, completed_count, "
        f"completed_fen) SELECT queue_id, number / {BUCKET_SIZE}, COUNT(*), "
        "SUM(entitlement_fen - rewarded_fen), COUNT(*) FILTER (WHERE order_completed), "
        "COALESCE(SUM(entitlement_fen - rewarded_fen) FILTER (WHERE order_completed), 0) "
        "FROM queue_entry WHERE queue_id = $1 AND status = 'WAITING' "
        f"GROUP BY queue_id, number / {BUCKET_SIZE}",
        [queue_id],
    )
    await conn.execute_query(
        "UPDATE rebate_queue q SET waiting_count = s.n, liability_fen = s.fen, "
        "next_number = s.top + 1, version = q.version + 1 FROM (SELECT COUNT(*) AS n, "
        "SUM(entitlement_fen - rewarded_fen) AS fen, MAX(number) AS top FROM queue_entry "
        "WHERE queue_id = $1 AND status = 'WAITING') s WHERE q.id = $1",
        [queue_id],
    )


# Seeding a million entries takes minutes: the benchmarks that only read the queue share one
# database per run (see `drop_shared`).
_shared: dict[int, tuple[str, SeededQueue]] = {}


async def shared_seeded_queue(
    env: BenchEnv, waiting: int, progress: Progress | None = None
) -> tuple[str, SeededQueue]:
    """The URL of a database holding a seeded queue of `waiting` entries, and the queue; made
    the first time it is asked for in this run. The caller must only read it."""
    if waiting not in _shared:
        database_url = await create_database(env, f"queue{waiting}")
        try:
            await migrate_db(database_url)
            await init_db(database_url)
            try:
                seeded = await seed_waiting_queue(
                    waiting, owner_entries=min(20, waiting - 1), progress=progress
                )
            finally:
                await close_db()
        except BaseException:
            await drop_database(env, database_url)
            raise
        _shared[waiting] = (database_url, seeded)
    return _shared[waiting]


async def drop_shared(env: BenchEnv) -> None:
    for database_url, _ in _shared.values():
        await drop_database(env, database_url)
    _shared.clear()
