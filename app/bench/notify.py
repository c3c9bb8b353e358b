"""Benchmark 3: WeChat Pay v2 payment notifications, many in flight at once.

Orders are opened through the real API (logged-in consumers' `createOrder`), then each is paid by
the notification WeChat would post: signed XML with our merchant key, as the bundled fake signs
it. They go to `POST /wechat/pay/notify` of a `rebate serve` child process from this process,
`notify_concurrency` at a time. A notification counts as accepted when the reply is SUCCESS.

The server runs with Redis, as in production: the handler records the payment and hands the order
to the arq workers. No worker runs while the handler is measured (the settle benchmark measures
them); one `rebate worker --burst` settles everything afterwards, to show that the hand-off holds.

The baseline is the same kind of notification, for orders of its own, sent one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from app.bench.api import buy, create_product, gather_limited, login
from app.bench.infra import (
    BenchEnv,
    quiet_machine,
)
from app.bench.loadgen import fire, fire_metered, http_request
from app.bench.report import BenchResult, Progress, percentile
from app.bench.scale import Scale
from app.bench.scene import PRIME, burst_worker, fetch_row, scene_server, serve_workers
from app.config import Settings
from app.wechat.credentials import resolve_credentials

TARGET_PER_SECOND = 1000.0
TARGET_P99_MS = 50.0
SUCCESS = b"<return_code><![CDATA[SUCCESS]]></return_code>"
ORDERS_PER_USER = 20
WARMUP = 200


def accepted(status: int, body: bytes) -> bool:
    return status == 200 and SUCCESS in body


@dataclass
class NotifyScene:
    database_url: str
    redis_url: str
    base_url: str
    port: int
    server: subprocess.Popen
    requests: list[bytes]  # one signed notification per order, framed for the load generator


@contextlib.asynccontextmanager
async def notify_scene(
    env: BenchEnv, count: int, workers: int, progress: Progress | None = None
) -> AsyncIterator[NotifyScene]:
    """A server and `count` orders awaiting payment, each with WeChat's notification ready."""
    from miniprogram_mock.signing import build_v2_payment_notification

    async with scene_server(env, "notify", workers) as (database_url, redis_url, api):
        server, port, base_url = api.process, api.port, api.base_url
        async with httpx.AsyncClient(base_url=base_url + "/", timeout=60) as http:
            product = await create_product(http, "bench gift", 16800)
            users = -(-count // ORDERS_PER_USER)
            tokens = await gather_limited(
                [lambda i=i: login(http, f"notify-{i}") for i in range(users)],
                concurrency=8,
            )
            orders = await gather_limited(
                [
                    lambda i=i: buy(http, tokens[i // ORDERS_PER_USER], product)
                    for i in range(count)
                ],
                concurrency=8,
                progress=progress,
                stage="orders through the API",
            )
        credentials = resolve_credentials(
            Settings(app_env="development", wechat_fake=True), base_url + "/"
        )
        requests = [
            http_request(
                "POST",
                "/wechat/pay/notify",
                build_v2_payment_notification(
                    credentials,
                    out_trade_no=order["outTradeNo"],
                    transaction_id=f"4200{index:016d}",
                    total_fee=order["payableFen"],
                    openid=f"mock-openid-notify-{index // ORDERS_PER_USER}",
                ),
                {"Content-Type": "text/xml; charset=utf-8"},
            )
            for index, order in enumerate(orders)
        ]
        yield NotifyScene(database_url, redis_url, base_url, port, server, requests)


async def run(scale: Scale, progress: Progress, env: BenchEnv) -> BenchResult:
    baseline_count = max(100, scale.notify_count // 10)
    total = WARMUP + baseline_count + scale.notify_count
    workers = serve_workers()
    async with notify_scene(env, total, workers, progress) as scene:
        port = scene.port
        warm = scene.requests[:WARMUP]
        sequential = scene.requests[WARMUP : WARMUP + baseline_count]
        measured = scene.requests[WARMUP + baseline_count :]
        warmup = await fire(port, warm, concurrency=50, check=accepted)
        baseline = await fire(
            port,
            sequential,
            concurrency=1,
            prime=PRIME,
            check=accepted,
            progress=progress,
            stage="one at a time",
        )
        quiet = await quiet_machine(env)
        result, cpu = await fire_metered(
            port,
            measured,
            server_pid=scene.server.pid,
            database_url=scene.database_url,
            concurrency=scale.notify_concurrency,
            prime=PRIME,
            check=accepted,
            progress=progress,
            stage=f"{scale.notify_concurrency} in flight",
        )
        paid = await _count(
            scene.database_url, "SELECT count(*) FROM app_order WHERE status='PAID'"
        )
        recorded = await _count(scene.database_url, "SELECT count(*) FROM payment_notification")
        # The server stops first: the worker settles what it handed over, not alongside it.
        scene.server.terminate()
        await asyncio.to_thread(scene.server.wait, 15)
        progress.update(0, 1, "settling afterwards")
        settled, settle_seconds = await _settle_afterwards(
            env, scene.database_url, scene.redis_url, scene.base_url
        )

    summary = result.summary()
    first = scale.notify_concurrency
    value = result.ok_per_second
    p99 = float(summary["p99_ms"])
    server_p99 = summary["server_p99_ms"]
    met = value >= TARGET_PER_SECOND and p99 < TARGET_P99_MS
    details = {
        "busy_cores_before": round(quiet, 2),
        "concurrency": scale.notify_concurrency,
        "notifications": len(measured),
        "accepted": result.ok,
        "p99_ms": p99,
        "server_p99_ms": server_p99,
        # The first `concurrency` answers are mostly those of the burst that opens the load (all
        # sent at once on connections the server took up beforehand); the rest, the load as it
        # goes on.
        "p99_ms_first_answers": round(percentile(result.latencies_ms[:first], 0.99), 2),
        "p99_ms_later_answers": round(percentile(result.latencies_ms[first:], 0.99), 2),
        "measured": summary,
        "cpu": cpu,
        "baseline_one_at_a_time": baseline.summary(),
        "warmup": {"sent": warmup.sent, "ok": warmup.ok},
        "serve_workers": workers,
        "orders_paid_in_db": paid,
        "payment_rows_in_db": recorded,
        "expected_paid": total if warmup.ok == WARMUP else None,
        "settlement": (
            "arq jobs in Redis; no worker during the measurement; one `rebate worker --burst` "
            "afterwards"
        ),
        "settled_afterwards": settled,
        "settle_afterwards_s": round(settle_seconds, 2),
        "little_law_rate_for_p99_target": round(scale.notify_concurrency / TARGET_P99_MS * 1000),
        "latency": "end to end: from the request's write to its answer's last byte reaching the "
        "generator's socket (the kernel's stamp); read_p99_ms: to when the generator read it; "
        "server_* is the app's own time (Server-Timing: from the call into the ASGI app to the "
        "response's start)",
    }
    base_value = baseline.ok_per_second
    return BenchResult(
        name="notify",
        value=round(value, 1),
        unit="notifications/s",
        target=f">= {TARGET_PER_SECOND:.0f}/s, p99 < {TARGET_P99_MS:.0f} ms (p99 {p99:.1f} ms)",
        met=met,
        baseline=round(base_value, 1),
        ratio=round(value / base_value, 2) if base_value else None,
        details=details,
    )


async def _count(database_url: str, sql: str) -> int:
    return int((await fetch_row(database_url, sql))[0])


async def _settle_afterwards(
    env: BenchEnv, database_url: str, redis_url: str, base_url: str
) -> tuple[int, float]:
    """One burst worker settles every order the handler handed over; (settled, seconds)."""
    seconds = await burst_worker(env, "notify", database_url, redis_url, base_url, timeout=600)
    settled = await _count(database_url, "SELECT count(*) FROM app_order WHERE settled")
    return settled, seconds
