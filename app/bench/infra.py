"""What the benchmarks share: a fresh PostgreSQL database, a Redis database, server processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis

ADMIN_TOKEN = "bench-admin-token"
SECRET_KEY = "bench-secret-key-" + "x" * 32


@dataclass(frozen=True, slots=True)
class BenchEnv:
    """Where the benchmarks find PostgreSQL and Redis (overridable for another machine)."""

    postgres_admin_url: str
    redis_url: str
    workdir: Path

    @classmethod
    def from_environ(cls) -> BenchEnv:
        return cls(
            postgres_admin_url=os.environ.get(
                "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
            ),
            redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
            workdir=Path(os.environ.get("BENCH_WORKDIR", "var/bench")),
        )


async def create_database(env: BenchEnv, label: str) -> str:
    """A new, empty PostgreSQL database; its URL."""
    name = f"rebate_bench_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(env.postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = env.postgres_admin_url.rpartition("/")
    return f"{base}/{name}"


async def drop_database(env: BenchEnv, database_url: str) -> None:
    name = database_url.rpartition("/")[2]
    admin = await asyncpg.connect(env.postgres_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(env: BenchEnv, label: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one benchmark, dropped afterwards."""
    database_url = await create_database(env, label)
    try:
        yield database_url
    finally:
        await drop_database(env, database_url)


async def flushed_redis(env: BenchEnv) -> str:
    """The benchmarks' Redis database, emptied."""
    client = Redis.from_url(env.redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return env.redis_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_environ(database_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a `rebate` process the benchmarks start."""
    environ = dict(os.environ)
    environ.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        ADMIN_TOKEN=ADMIN_TOKEN,
        APP_ENV="development",
        FAKE_WECHAT="1",
    )
    environ.pop("REDIS_URL", None)
    if redis_url:
        environ["REDIS_URL"] = redis_url
    environ.update(extra)
    return environ


@contextlib.contextmanager
def rebate_process(
    args: list[str], environ: dict[str, str], log: Path
) -> Iterator[subprocess.Popen]:
    """A `rebate …` child process, stopped on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args], env=environ, stdout=out, stderr=out
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_healthy(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            try:
                response = await client.get(f"{base_url}/healthz")
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base_url} did not become healthy in {timeout:.0f} s")
            await asyncio.sleep(0.2)


@dataclass(frozen=True, slots=True)
class ServedApi:
    process: subprocess.Popen
    port: int
    base_url: str  # without the trailing slash


@contextlib.asynccontextmanager
async def served_api(
    env: BenchEnv,
    database_url: str,
    redis_url: str | None,
    label: str,
    args: tuple[str, ...] = (),
    **extra: str,
) -> AsyncIterator[ServedApi]:
    """A `rebate serve` child on a free loopback port, handed over once it answers /healthz."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environ = service_environ(database_url, redis_url, **extra)
    log = env.workdir / f"{label}-serve.log"
    with rebate_process(["serve", "--port", str(port), *args], environ, log) as process:
        await wait_healthy(base_url)
        yield ServedApi(process, port, base_url)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


QUIET_CORES = 0.25  # busy cores below which the machine counts as quiet
QUIET_WAIT_SECONDS = 30.0


async def quiet_machine(env: BenchEnv) -> float:
    """Write PostgreSQL's dirty pages now (CHECKPOINT) and wait, up to QUIET_WAIT_SECONDS, until
    the machine's cores idle: the writes of a scene just set (checkpoints, autovacuum) must not
    land in the middle of the next measurement. The busy cores last seen."""
    from app.bench.loadgen import machine_busy_seconds

    admin = await asyncpg.connect(env.postgres_admin_url)
    try:
        await admin.execute("CHECKPOINT")
    finally:
        await admin.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUIET_WAIT_SECONDS
    busy = float("inf")
    while loop.time() < deadline:
        before, at = machine_busy_seconds(), loop.time()
        await asyncio.sleep(0.5)
        busy = (machine_busy_seconds() - before) / (loop.time() - at)
        if busy < QUIET_CORES:
            break
    return busy
