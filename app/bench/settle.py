"""Benchmark 2: paid orders of one hot mall queue settled per second by worker processes on
PostgreSQL, beside the naive settlement of one transaction per order.

The first paid order goes through the services (login, create, pay), so every row the payment
writes (order, line, payment notification, ledger transaction and postings, account balances) is
what the product writes; the rest are copies of those rows made in the database. The timed part
is the workers' own job (`settle_backlog`: batches claimed with SKIP LOCKED) in separate
processes that start together; the books are audited afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from app.bench.infra import (
    BenchEnv,
    flushed_redis,
    fresh_database,
    quiet_machine,
    service_environ,
)
from app.bench.report import BenchResult, Progress
from app.bench.scale import Scale
from app.bench.seed import copy_rows, max_id, paid_order
from app.catalog.service import upsert_product
from app.db import close_db, init_db, migrate_db
from app.ledger.audit import audit
from app.members.service import login_with_openid
from app.orders.models import Order
from app.startup import prepare_collector

TARGET_PER_SECOND = 5000.0
TARGET_RATIO = 5.0
PRICE_FEN = 16800
CHUNK = 50_000
WORKER_TIMEOUT_S = 900.0
_FILLED = (
    "app_user",
    "wechat_session",
    "app_order",
    "order_line",
    "payment_notification",
    "ledger_transaction",
    "ledger_posting",
)


async def run(scale: Scale, progress: Progress, env: BenchEnv) -> BenchResult:
    async with fresh_database(env, "settle") as database_url:
        redis_url = await flushed_redis(env)
        await migrate_db(database_url)
        await init_db(database_url)
        try:
            return await _measure(scale, progress, env, database_url, redis_url)
        finally:
            await close_db()


async def _measure(
    scale: Scale, progress: Progress, env: BenchEnv, database_url: str, redis_url: str
) -> BenchResult:
    product = await upsert_product(
        {"name": "基准礼盒", "price_fen": PRICE_FEN, "rebate": {"enabled": True}}
    )
    await _paid_orders(scale.settle_orders, product.id, "w", progress)
    environ = service_environ(database_url, redis_url)
    quiet = await quiet_machine(env)
    seconds, workers = await _run_workers(scale, environ, progress)
    unsettled = await Order.filter(settled=False).count()
    if unsettled:
        raise RuntimeError(f"the workers left {unsettled} orders unsettled")

    baseline_ids = await _paid_orders(scale.settle_baseline_orders, product.id, "b", progress)
    baseline_seconds = await _naive(baseline_ids, progress)

    progress.update(0, 1, "auditing the books")
    violations = await audit()
    progress.update(1, 1, "auditing the books")

    value = scale.settle_orders / seconds
    baseline = len(baseline_ids) / baseline_seconds
    ratio = value / baseline
    batches = sum(w["batches"] for w in workers)
    statements = sum(w["statements"] for w in workers)
    postgres_cpu = [w["postgres_cpu_s"] for w in workers]
    return BenchResult(
        name="settle",
        value=value,
        unit="orders/s",
        target=f">= {TARGET_PER_SECOND:g} orders/s and >= {TARGET_RATIO:g}x baseline",
        met=value >= TARGET_PER_SECOND and ratio >= TARGET_RATIO and not violations,
        baseline=baseline,
        ratio=ratio,
        details={
            "busy_cores_before": round(quiet, 2),
            "orders": scale.settle_orders,
            "workers": scale.settle_workers,
            "seconds": round(seconds, 3),
            "settled_by_worker": [w["settled"] for w in workers],
            "batches": batches,
            "ms_per_batch": round(sum(w["busy_s"] for w in workers) * 1000 / max(batches, 1), 2),
            "statements_per_batch": round(statements / max(batches, 1), 1),
            # CPU per order: the worker processes, and their PostgreSQL backends (when this
            # machine runs the database and /proc shows it).
            "worker_cpu_us_per_order": round(
                sum(w["cpu_s"] for w in workers) * 1e6 / scale.settle_orders
            ),
            "postgres_cpu_us_per_order": (
                round(sum(postgres_cpu) * 1e6 / scale.settle_orders)
                if None not in postgres_cpu
                else None
            ),
            "baseline_orders": len(baseline_ids),
            "baseline_seconds": round(baseline_seconds, 3),
            "audit_violations": len(violations),
            "audit_first": violations[:3],
        },
    )


# --- setup -------------------------------------------------------------------------------------


async def _paid_orders(count: int, product_id: int, tag: str, progress: Progress) -> list[int]:
    """`count` one-line orders of `product_id` by as many new buyers, paid, not settled."""
    stage = f"paying {count} orders ({tag})"
    progress.update(0, count, stage)
    user = await login_with_openid(f"bench-settle-{tag}-0", "bench")
    order = await paid_order(user.id, product_id, f"bench{tag}0")
    conn = connections.get("default")
    copies = count - 1
    done = 1
    for first in range(1, copies + 1, CHUNK):
        last = min(copies, first + CHUNK - 1)
        await _copy_paid_order(conn, order.id, tag, first, last)
        done = last + 1
        progress.update(done, count, stage)
    # As autovacuum would after a bulk load: statistics of the tables just filled. The tables
    # that start empty (entries, contributions, payouts, accounts…) are left to it, as in a
    # live database: statistics taken while a table is tiny would plan its key checks as scans.
    await conn.execute_query(f"ANALYZE {', '.join(_FILLED)}")
    return list(
        await Order.filter(id__gte=order.id, settled=False)
        .order_by("id")
        .values_list("id", flat=True)
    )


async def _copy_paid_order(
    conn: BaseDBAsyncClient, order_id: int, tag: str, first: int, last: int
) -> None:
    """Buyers first..last, each with a copy of paid order `order_id` and of what paying it wrote."""
    [template] = await conn.execute_query_dict(
        "SELECT o.user_id AS user_id, o.transaction_id AS transaction_id, l.id AS line_id, "
        "n.id AS notification_id, t.id AS txn_id FROM app_order o "
        "JOIN order_line l ON l.order_id = o.id "
        "JOIN payment_notification n ON n.order_id = o.id "
        "JOIN ledger_transaction t ON t.key = 'payment:' || o.transaction_id WHERE o.id = $1",
        [order_id],
    )
    base = {t: await max_id(conn, t) for t in ("app_user", "app_order", "order_line")}
    base["ledger_transaction"] = await max_id(conn, "ledger_transaction")
    user = f"{base['app_user']} + g"
    order = f"{base['app_order']} + g"
    txn = f"'bench{tag}' || g"
    # Referrer codes as the service makes them: 8 characters of its alphabet (no 0, 1, I, O).
    code = f"'{tag.upper()}' || translate(upper(lpad(to_hex(g), 7, '0')), '01', 'XY')"
    await copy_rows(
        conn,
        "app_user",
        f"t.id = {template['user_id']}",
        first,
        last,
        {
            "id": user,
            "openid": f"'bench-settle-{tag}-' || g",
            "referrer_code": code,
        },
    )
    await copy_rows(
        conn,
        "wechat_session",
        f"t.user_id = {template['user_id']}",
        first,
        last,
        {"user_id": user},
    )
    await copy_rows(
        conn,
        "app_order",
        f"t.id = {order_id}",
        first,
        last,
        {
            "id": order,
            # Time of creation, then hexadecimal digits, as new_out_trade_no makes them.
            "out_trade_no": f"substr(t.out_trade_no, 1, 15) || '{'A' if tag == 'w' else 'B'}' "
            "|| upper(lpad(to_hex(g), 11, '0'))",
            "transaction_id": txn,
            "user_id": user,
            # One payment after another, as they arrive.
            "paid_at": "t.paid_at + g * interval '1 millisecond'",
            "created_at": "t.created_at + g * interval '1 millisecond'",
        },
    )
    await copy_rows(
        conn,
        "order_line",
        f"t.id = {template['line_id']}",
        first,
        last,
        {"id": f"{base['order_line']} + g", "order_id": order},
    )
    await copy_rows(
        conn,
        "payment_notification",
        f"t.id = {template['notification_id']}",
        first,
        last,
        {
            "id": "nextval(pg_get_serial_sequence('payment_notification', 'id'))",
            "transaction_id": txn,
            "order_id": order,
        },
    )
    await copy_rows(
        conn,
        "ledger_transaction",
        f"t.id = {template['txn_id']}",
        first,
        last,
        {"id": f"{base['ledger_transaction']} + g", "key": "'payment:' || " + txn},
    )
    await copy_rows(
        conn,
        "ledger_posting",
        f"t.txn_id = {template['txn_id']}",
        first,
        last,
        {
            "id": "nextval(pg_get_serial_sequence('ledger_posting', 'id'))",
            "txn_id": f"{base['ledger_transaction']} + g",
        },
    )
    # Each account moves by what its copied postings add, as `post` moves it.
    await conn.execute_query(
        "UPDATE ledger_account a SET balance = a.balance + s.total * $2 FROM "
        "(SELECT account_id, SUM(amount) AS total FROM ledger_posting WHERE txn_id = $1 "
        "GROUP BY account_id) s WHERE a.id = s.account_id",
        [template["txn_id"], last - first + 1],
    )
    for table in ("app_user", "app_order", "order_line", "ledger_transaction"):
        await conn.execute_query(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
        )


# --- the timed workers -------------------------------------------------------------------------


async def _run_workers(
    scale: Scale, environ: dict[str, str], progress: Progress
) -> tuple[float, list[dict]]:
    """Start the worker processes, let them go at once, and time them until all are done."""
    progress.update(0, scale.settle_orders, "starting workers")
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.bench.settle",
            env=environ,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(scale.settle_workers)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            ready = await asyncio.wait_for(process.stdout.readline(), timeout=120)
            if ready.strip() != b"ready":
                raise RuntimeError(f"a settle worker did not start: {ready!r}")
        started = time.monotonic()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        waits = [asyncio.ensure_future(p.communicate()) for p in processes]
        while not all(w.done() for w in waits):
            await asyncio.wait(waits, timeout=0.5)
            if time.monotonic() - started > WORKER_TIMEOUT_S:
                raise RuntimeError("the settle workers did not finish in time")
            left = await Order.filter(settled=False).count()
            progress.update(scale.settle_orders - left, scale.settle_orders, "workers settling")
        reports = []
        for process, wait in zip(processes, waits, strict=True):
            output, _ = wait.result()
            if process.returncode != 0:
                raise RuntimeError(f"a settle worker failed ({process.returncode})")
            reports.append(json.loads(output.decode().strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    # Each worker measured its own span: from the common start to the last one's end.
    seconds = max(r["finished"] for r in reports) - started
    return seconds, reports


async def _naive(order_ids: list[int], progress: Progress) -> float:
    """What a plugin does: one transaction per order, under the queue's lock, one at a time."""
    from app.rebate.service import settle_orders

    now = datetime.now(UTC)
    started = time.perf_counter()
    for index, order_id in enumerate(order_ids):
        await settle_orders([order_id], now=now)
        progress.update(index + 1, len(order_ids), "baseline: one order a transaction")
    return time.perf_counter() - started


class _StatementCounter(logging.Handler):
    """Counts the statements tortoise sends (it logs each one at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU of a process on this machine, from /proc (None if not readable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _worker() -> None:
    """One settle worker: open the database, wait for "go", settle the backlog, report."""
    from redis.asyncio import Redis

    from app.config import get_settings
    from app.rebate.figure_cache import RedisFigureCache
    from app.rebate.figures import use_figure_cache
    from workers import jobs

    settings = get_settings()
    await init_db(settings.database_url)
    # As the arq worker does: the figures each batch changes are published to Redis.
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    if redis is not None:
        use_figure_cache(RedisFigureCache(redis))
    # As `rebate worker` does once started.
    prepare_collector()
    [row] = await connections.get("default").execute_query_dict("SELECT pg_backend_pid() AS pid")
    backend = int(row["pid"])
    counter = _StatementCounter()
    logger = logging.getLogger("tortoise.db_client")
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    batches = 0
    busy = 0.0
    settled = 0
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        backend_before = _cpu_seconds(backend)
        now = datetime.now(UTC)
        # settle_backlog, batch by batch, so that each batch's time is known.
        while True:
            began = time.perf_counter()
            count = await jobs.settle_pending(now)
            busy += time.perf_counter() - began
            batches += 1
            settled += count
            if count == 0:
                break
        finished = time.monotonic()
        cpu = time.process_time() - cpu
        backend_after = _cpu_seconds(backend)
        backend_cpu = (
            backend_after - backend_before
            if backend_before is not None and backend_after is not None
            else None
        )
    finally:
        if redis is not None:
            await redis.aclose()
        await close_db()
    print(
        json.dumps(
            {
                "settled": settled,
                "batches": batches,
                "busy_s": busy,
                "statements": counter.count,
                "cpu_s": cpu,
                "postgres_cpu_s": backend_cpu,
                "finished": finished,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(_worker())
