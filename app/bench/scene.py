"""What the HTTP benchmarks (notify, entries_http) set their scenes with: a fresh database and
Redis served by `rebate serve --workers N`, a burst worker to settle what was paid, and one-row
reads of the result."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from app.bench.infra import (
    BenchEnv,
    ServedApi,
    flushed_redis,
    fresh_database,
    rebate_process,
    served_api,
    service_environ,
)
from app.bench.loadgen import http_request

SCENE_ENVIRON = {
    "WECHAT_FAKE": "true",
    # The scene is set by a few hundred consumers from one address in seconds.
    "MUTATION_RATE_LIMIT_PER_MINUTE": "0",
    # No sweeps or resets in the middle of a measurement.
    "JOBS_INTERVAL_SECONDS": "0",
}

# Sent once on each connection of a measured load before its clock starts (`fire`'s `prime`):
# the measurement is of requests on connections the server has taken up, as behind a proxy
# that keeps its connections to the server open. It is answered by the first layer of the app
# (the notification door refuses a GET), touching neither the database nor Redis: a prime that
# read the database (GET /healthz) had each process open a dozen new connections just before
# the load, and the first batches ran on backends that had yet to load their caches.
PRIME = http_request("GET", "/wechat/pay/notify")


def serve_workers() -> int:
    """How many uvicorn processes serve the API (BENCH_SERVE_WORKERS, default one per core)."""
    given = os.environ.get("BENCH_SERVE_WORKERS")
    return max(1, int(given)) if given else max(1, os.cpu_count() or 1)


@contextlib.asynccontextmanager
async def scene_server(
    env: BenchEnv, label: str, workers: int
) -> AsyncIterator[tuple[str, str, ServedApi]]:
    """(database URL, Redis URL, the server) of a fresh database and an emptied Redis."""
    async with fresh_database(env, label) as database_url:
        redis_url = await flushed_redis(env)
        args = ("--workers", str(workers), "--no-access-log")
        async with served_api(env, database_url, redis_url, label, args, **SCENE_ENVIRON) as api:
            yield database_url, redis_url, api


async def burst_worker(
    env: BenchEnv,
    label: str,
    database_url: str,
    redis_url: str,
    base_url: str,
    *,
    timeout: float,
) -> float:
    """One `rebate worker --burst` settles what is due (given `timeout` seconds); the seconds
    it took."""
    environ = service_environ(database_url, redis_url, **SCENE_ENVIRON)
    args = ["worker", "--burst", "--public-base-url", base_url + "/"]
    started = time.monotonic()
    with rebate_process(args, environ, env.workdir / f"{label}-worker.log") as worker:
        await asyncio.to_thread(worker.wait, timeout)
    return time.monotonic() - started


async def fetch_row(database_url: str, sql: str) -> Any:
    """The first row of one statement, on a connection of its own."""
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchrow(sql)
    finally:
        await connection.close()
