"""`rebate serve --demo` (what `make run` starts): a fresh process on a fresh SQLite file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.client import Api, buy, my_entries, pay_and_settle
from tests.support.server import free_port


@pytest.fixture
async def demo_process(tmp_path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        APP_ENV="development",
        DATABASE_URL=f"sqlite://{tmp_path / 'demo.sqlite3'}",
        PYTHONUNBUFFERED="1",
    )
    env.pop("WECHAT_APP_ID", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(300):
                if process.poll() is not None:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"rebate serve exited: {output}")
                try:
                    if (await client.get("healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("rebate serve did not become healthy")
        yield base, env
    finally:
        process.terminate()
        process.wait(timeout=20)


async def test_the_demo_plays_the_worked_example(demo_process):
    base, env = demo_process
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        health = (await http.get("healthz")).json()
        assert health == {"ok": True, "database": "ok", "redis": None}
        page = await http.get("mock/")
        assert page.status_code == 200
        assert "graphql" in page.text
        graphiql = await http.get("graphql", headers={"Accept": "text/html"})
        assert graphiql.status_code == 200
        anonymous = Api(http)
        buyers = [await anonymous.login(code) for code in "abcd"]
        products = (await buyers[0]("{ products { items { id name priceFen } } }"))["products"]
        gift = next(p for p in products["items"] if p["priceFen"] == 16800)
        for buyer in buyers:
            await pay_and_settle(buyer, await buy(buyer, gift["id"]))
        a, b = (await my_entries(buyers[0]))[0], (await my_entries(buyers[1]))[0]
        assert (a["status"], a["rewardedFen"]) == ("COMPLETED", 21840)
        assert (b["status"], b["rewardedFen"]) == ("WAITING", 10920)
    audit = subprocess.run(
        [sys.executable, "-m", "app", "audit"], env=env, capture_output=True, text=True, timeout=60
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "audit: ok" in audit.stdout
