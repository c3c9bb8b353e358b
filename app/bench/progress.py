"""Benchmark 4: an entry's queue progress behind a million waiting entries, inside the server."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from redis.asyncio import Redis
from tortoise import connections

from app.bench.infra import BenchEnv, flushed_redis
from app.bench.report import BenchResult, Progress, percentile
from app.bench.scale import Scale
from app.bench.seed import SeededQueue, shared_seeded_queue
from app.db import close_db, init_db
from app.rebate import progress as entry_progress
from app.rebate.figure_cache import RedisFigureCache
from app.rebate.figures import use_figure_cache, warm_figure_caches
from app.rebate.models import QueueEntry
from app.rebate.settings import load_rebate_settings

TARGET_P99_MS = 5.0
BASELINE_SAMPLES = 30


async def run(scale: Scale, progress: Progress, env: BenchEnv) -> BenchResult:
    database_url, seeded = await shared_seeded_queue(env, scale.progress_waiting, progress)
    await init_db(database_url)
    redis = Redis.from_url(await flushed_redis(env))
    # As in the API with Redis: readers never load the cache, the workers' timer does.
    use_figure_cache(RedisFigureCache(redis), readers_load=False)
    try:
        return await _measure(scale, progress, seeded)
    finally:
        await redis.aclose()
        await close_db()


async def _measure(scale: Scale, progress: Progress, seeded: SeededQueue) -> BenchResult:
    entry = await QueueEntry.get(id=seeded.owner_entry_ids[-1])
    settings = await load_rebate_settings()
    now = datetime.now(UTC)

    # What the progress screen runs: position, amount ahead and estimated wait of one entry.
    await warm_figure_caches()
    [view] = await entry_progress.entry_views([entry], settings, now=now)
    samples = []
    for index in range(scale.progress_samples):
        started = time.perf_counter()
        [view] = await entry_progress.entry_views([entry], settings, now=now)
        samples.append((time.perf_counter() - started) * 1000)
        progress.update(index + 1, scale.progress_samples, "progress of the last entry")

    # What a plugin without running figures does: count and sum the queue ahead of the entry.
    conn = connections.get("default")
    scan = (
        "SELECT COUNT(*) AS n, COALESCE(SUM(entitlement_fen - rewarded_fen), 0) AS fen "
        "FROM queue_entry WHERE queue_id = $1 AND status = 'WAITING' AND number < $2"
    )
    baseline = []
    for index in range(BASELINE_SAMPLES):
        started = time.perf_counter()
        [row] = await conn.execute_query_dict(scan, [entry.queue_id, entry.number])
        baseline.append((time.perf_counter() - started) * 1000)
        progress.update(index + 1, BASELINE_SAMPLES, "baseline: scanning the queue")

    ahead = int(row["n"])
    assert view.position == ahead + 1, (view.position, ahead)
    assert view.amount_ahead_fen == int(row["fen"]), (view.amount_ahead_fen, row["fen"])
    p99 = percentile(samples, 0.99)
    baseline_p99 = percentile(baseline, 0.99)
    return BenchResult(
        name="progress",
        value=p99,
        unit="ms p99",
        target=f"< {TARGET_P99_MS:g} ms p99",
        met=p99 < TARGET_P99_MS,
        baseline=baseline_p99,
        ratio=baseline_p99 / p99 if p99 else None,
        details={
            "waiting_ahead": ahead,
            "position": view.position,
            "amount_ahead_fen": view.amount_ahead_fen,
            "estimated_wait_days": view.estimated_wait_days,
            "samples": len(samples),
            "p50_ms": percentile(samples, 0.5),
            "max_ms": max(samples),
            "baseline": "COUNT/SUM over the waiting entries ahead (no running figures)",
            "baseline_samples": len(baseline),
            "baseline_p50_ms": percentile(baseline, 0.5),
            "figure_cache": "Redis",
        },
    )
