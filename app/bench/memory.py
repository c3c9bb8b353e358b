"""Benchmark 6: what a million waiting entries cost the API process, beside ten."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from app.bench.infra import (
    SECRET_KEY,
    BenchEnv,
    flushed_redis,
    rss_bytes,
    served_api,
)
from app.bench.report import BenchResult, Progress
from app.bench.scale import Scale
from app.bench.seed import shared_seeded_queue
from app.members.tokens import issue_token

MIB = 1024 * 1024
# Allocator noise between two runs of the same process: what "no more" allows.
TOLERANCE = 0.05
ROUNDS = 5
REQUESTS_PER_ROUND = 300
CONCURRENCY = 8

SCREEN = """query($id: ID!) {
  myEntries(first: 20) { items { id status position amountAheadFen estimatedWaitDays
    process(first: 5) { items { amountFen } } } nextCursor }
  entry(id: $id) { position amountAheadFen estimatedWaitDays } }"""


async def run(scale: Scale, progress: Progress, env: BenchEnv) -> BenchResult:
    small = await _resident(env, 10, progress, f"queue of {10}")
    large = await _resident(env, scale.memory_waiting, progress, f"queue of {scale.memory_waiting}")
    limit = small["rss_mib"] * (1 + TOLERANCE)
    return BenchResult(
        name="memory",
        value=large["rss_mib"],
        unit="MiB RSS",
        target=f"<= the 10-entry process + {TOLERANCE:.0%}",
        met=large["rss_mib"] <= limit,
        baseline=small["rss_mib"],
        ratio=large["rss_mib"] / small["rss_mib"],
        details={"ten": small, "large": large, "limit_mib": limit},
    )


async def _resident(env: BenchEnv, waiting: int, progress: Progress, stage: str) -> dict[str, Any]:
    """RSS of a `rebate serve` process after it has served the progress screens of a queue."""
    database_url, seeded = await shared_seeded_queue(env, waiting, progress)
    redis_url = await flushed_redis(env)
    label = f"memory-{waiting}"
    async with served_api(env, database_url, redis_url, label, JOBS_INTERVAL_SECONDS="0") as api:
        server, base_url = api.process, api.base_url
        token = issue_token(seeded.owner_id, SECRET_KEY)
        last = seeded.owner_entry_ids[-1]
        samples = []
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            for round_ in range(ROUNDS):
                await _screens(http, token, last)
                samples.append(rss_bytes(server.pid) / MIB)
                progress.update(round_ + 1, ROUNDS, stage)
    return {
        "waiting": waiting,
        "rss_mib": max(samples),
        "rss_after_each_round_mib": samples,
        "requests": ROUNDS * REQUESTS_PER_ROUND,
    }


async def _screens(http: httpx.AsyncClient, token: str, entry_id: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"query": SCREEN, "variables": {"id": str(entry_id)}}

    async def one() -> None:
        response = await http.post("/graphql", json=body, headers=headers)
        answer = response.json()
        if answer.get("errors") or answer["data"]["entry"]["position"] is None:
            raise RuntimeError(f"the progress screen failed: {answer}")

    for _ in range(REQUESTS_PER_ROUND // CONCURRENCY):
        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
