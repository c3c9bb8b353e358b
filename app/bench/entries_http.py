"""Benchmark 5: `myEntries(first: 20)` over HTTP under load, from consumers with a full page.

The scene is set through the API: consumers log in, each buys one order of ENTRY_LINES lines
(one queue entry per line), WeChat's signed notification pays it, and one `rebate worker
--burst` settles them all into the mall queue. The product extracts 1% of each payment, so the
front of the queue moves a little and the rest stays waiting: every consumer has a full first page
and a next one. Then `http_requests` POST /graphql go to a `rebate serve` child process,
`http_concurrency` at a time, spread over the consumers' tokens.

The baseline is `{ __typename }` under the same load with the same tokens: what the stack costs
when the query has nothing to do.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from app.bench.api import buy, create_product, gather_limited, graphql, login
from app.bench.infra import (
    BenchEnv,
    quiet_machine,
)
from app.bench.loadgen import fire, fire_metered, http_request
from app.bench.report import BenchResult, Progress
from app.bench.scale import Scale
from app.bench.scene import PRIME, burst_worker, fetch_row, scene_server, serve_workers
from app.config import Settings
from app.wechat.credentials import resolve_credentials

TARGET_PER_SECOND = 1000.0
TARGET_P99_MS = 50.0
ENTRY_LINES = 25  # entries per consumer: a full first page of 20 and a second one
EXTRACTION_BP = 100
QUERY = (
    "{ myEntries(first: 20) { items { id status position amountAheadFen estimatedWaitDays "
    "remainingFen } nextCursor } }"
)
TRIVIAL = "{ __typename }"
WARMUP = 500
SUCCESS = b"<return_code><![CDATA[SUCCESS]]></return_code>"


def consumers_for(scale: Scale) -> int:
    # Some thousands of entries in the queue; a full run's queue twice a small one's.
    return 200 if scale.name == "full" else 100


def page_ok(status: int, body: bytes) -> bool:
    return status == 200 and body.startswith(b'{"data":{"myEntries":{"items":[{')


def typename_ok(status: int, body: bytes) -> bool:
    return status == 200 and body.startswith(b'{"data":{"__typename":"Query"}')


@dataclass
class EntriesScene:
    database_url: str
    port: int
    server: subprocess.Popen
    tokens: list[str]
    entries: int
    waiting: int

    def requests(self, query: str, count: int) -> list[bytes]:
        """`count` POST /graphql of `query`, round-robin over the consumers' tokens."""
        body = json.dumps({"query": query}).encode()
        return [
            http_request(
                "POST",
                "/graphql",
                body,
                {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.tokens[index % len(self.tokens)]}",
                },
            )
            for index in range(count)
        ]


@contextlib.asynccontextmanager
async def entries_scene(
    env: BenchEnv, consumers: int, workers: int, progress: Progress | None = None
) -> AsyncIterator[EntriesScene]:
    """A server, and `consumers` consumers with ENTRY_LINES settled entries each in one queue."""
    from miniprogram_mock.signing import build_v2_payment_notification

    async with scene_server(env, "entries", workers) as (database_url, redis_url, api):
        server, port, base_url = api.process, api.port, api.base_url
        credentials = resolve_credentials(
            Settings(app_env="development", wechat_fake=True), base_url + "/"
        )
        async with httpx.AsyncClient(base_url=base_url + "/", timeout=60) as http:
            product = await create_product(
                http, "bench entries", 10000, extractionRatioBp=EXTRACTION_BP
            )
            tokens = await gather_limited(
                [lambda i=i: login(http, f"entries-{i}") for i in range(consumers)],
                concurrency=8,
                progress=progress,
                stage="consumers log in",
            )
            orders = await gather_limited(
                [lambda i=i: buy(http, tokens[i], product, ENTRY_LINES) for i in range(consumers)],
                concurrency=8,
                progress=progress,
                stage="orders through the API",
            )

            async def pay(index: int) -> None:
                order = orders[index]
                body = build_v2_payment_notification(
                    credentials,
                    out_trade_no=order["outTradeNo"],
                    transaction_id=f"4300{index:016d}",
                    total_fee=order["payableFen"],
                    openid=f"mock-openid-entries-{index}",
                )
                response = await http.post("wechat/pay/notify", content=body)
                if SUCCESS not in response.content:
                    raise RuntimeError(f"payment refused: {response.text}")

            await gather_limited(
                [lambda i=i: pay(i) for i in range(consumers)],
                concurrency=8,
                progress=progress,
                stage="WeChat pays",
            )
            if progress is not None:
                progress.update(0, 1, "a worker settles")
            await _settle(env, database_url, redis_url, base_url)
            entries, waiting = await _queue_size(database_url)
            first = await graphql(http, QUERY, tokens[-1])
            page = first["myEntries"]
            if len(page["items"]) != 20 or page["nextCursor"] is None:
                raise RuntimeError(f"the last consumer has no full page: {json.dumps(page)}")
        yield EntriesScene(database_url, port, server, tokens, entries, waiting)


async def run(scale: Scale, progress: Progress, env: BenchEnv) -> BenchResult:
    consumers = consumers_for(scale)
    workers = serve_workers()
    concurrency = scale.http_concurrency
    async with entries_scene(env, consumers, workers, progress) as scene:
        port = scene.port
        await fire(port, scene.requests(QUERY, WARMUP), concurrency=concurrency, check=page_ok)
        quiet = await quiet_machine(env)
        meter = {"server_pid": scene.server.pid, "database_url": scene.database_url}
        baseline, baseline_cpu = await fire_metered(
            port,
            scene.requests(TRIVIAL, scale.http_requests),
            **meter,
            concurrency=concurrency,
            prime=PRIME,
            check=typename_ok,
            progress=progress,
            stage="{ __typename }",
        )
        one_at_a_time = await fire(
            port,
            scene.requests(QUERY, min(500, scale.http_requests)),
            concurrency=1,
            prime=PRIME,
            check=page_ok,
            progress=progress,
            stage="myEntries one at a time",
        )
        result, cpu = await fire_metered(
            port,
            scene.requests(QUERY, scale.http_requests),
            **meter,
            concurrency=concurrency,
            prime=PRIME,
            check=page_ok,
            progress=progress,
            stage="myEntries",
        )
        entries, waiting = scene.entries, scene.waiting

    summary = result.summary()
    value = result.ok_per_second
    p99 = float(summary["p99_ms"])
    met = value >= TARGET_PER_SECOND and p99 < TARGET_P99_MS and result.ok == result.sent
    base_value = baseline.ok_per_second
    return BenchResult(
        name="entries_http",
        value=round(value, 1),
        unit="req/s",
        target=f">= {TARGET_PER_SECOND:.0f} req/s, p99 < {TARGET_P99_MS:.0f} ms (p99 {p99:.1f} ms)",
        met=met,
        baseline=round(base_value, 1),
        ratio=round(value / base_value, 2) if base_value else None,
        details={
            "busy_cores_before": round(quiet, 2),
            "concurrency": concurrency,
            "requests": result.sent,
            "ok": result.ok,
            "p99_ms": p99,
            "server_p99_ms": summary["server_p99_ms"],
            "measured": summary,
            "cpu": cpu,
            "baseline": "{ __typename } under the same load and tokens",
            "baseline_typename": baseline.summary(),
            "baseline_cpu": baseline_cpu,
            "my_entries_one_at_a_time": one_at_a_time.summary(),
            "consumers": consumers,
            "entries_in_queue": entries,
            "waiting_in_queue": waiting,
            "serve_workers": workers,
            "latency": "end to end: from the request's write to its answer's last byte reaching "
            "the generator's socket (the kernel's stamp); read_p99_ms: to when the generator read "
            "it; server_* is the app's own time (Server-Timing: from the call into the ASGI app to "
            "the response's start)",
        },
    )


async def _settle(env: BenchEnv, database_url: str, redis_url: str, base_url: str) -> None:
    await burst_worker(env, "entries", database_url, redis_url, base_url, timeout=900)
    unsettled = (
        await fetch_row(
            database_url, "SELECT count(*) FROM app_order WHERE status = 'PAID' AND NOT settled"
        )
    )[0]
    if unsettled:
        raise RuntimeError(f"{unsettled} paid orders were not settled by the worker")


async def _queue_size(database_url: str) -> tuple[int, int]:
    row = await fetch_row(
        database_url,
        "SELECT count(*) AS entries, count(*) FILTER (WHERE status = 'WAITING') AS waiting "
        "FROM queue_entry",
    )
    return int(row["entries"]), int(row["waiting"])
