"""The compose topology as local processes: one `rebate serve`, two `rebate worker`, PostgreSQL
and Redis; the article's example played over HTTP through the fake WeChat (runs when CI gives
PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest

from app.db import is_postgres
from tests.support.client import Api, buy, my_entries, pay_and_settle
from tests.support.server import ADMIN_TOKEN, free_port

pytestmark = pytest.mark.skipif(
    not (is_postgres(os.environ.get("DATABASE_URL")) and os.environ.get("REDIS_URL")),
    reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL), as CI gives them",
)


async def _spawn(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_api_and_two_workers_play_the_worked_example(server):
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    env = {
        **os.environ,
        "APP_ENV": "test",
        "WECHAT_FAKE": "true",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRET_KEY": "topology-secret-key-of-thirty-two-bytes",
    }
    api = await _spawn("serve", "--port", str(port), env=env)
    workers = [await _spawn("worker", "--public-base-url", base, env=env) for _ in range(2)]
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(300):
                try:
                    health = (await http.get("healthz")).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert health == {"ok": True, "database": "ok", "redis": "ok"}
            admin = Api(http, ADMIN_TOKEN)
            product = (
                await admin(
                    'mutation { upsertProduct(input: {name: "礼盒", priceFen: 16800, '
                    "rebate: {enabled: true}}) { id } }"
                )
            )["upsertProduct"]["id"]
            buyers = [await Api(http).login(code) for code in "abcd"]
            for buyer in buyers:
                await pay_and_settle(buyer, await buy(buyer, product))
            a, b = (await my_entries(buyers[0]))[0], (await my_entries(buyers[1]))[0]
            assert (a["status"], a["rewardedFen"]) == ("COMPLETED", 21840)
            assert (b["status"], b["rewardedFen"]) == ("WAITING", 10920)
    finally:
        for process in (api, *workers):
            process.terminate()
        for process in (api, *workers):
            await asyncio.wait_for(process.wait(), timeout=30)
