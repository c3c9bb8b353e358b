"""A real server for end-to-end tests: uvicorn on a loopback port, in the tests' event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from pathlib import Path

import uvicorn
from tortoise import Tortoise, connections

from app.config import Settings
from app.db import is_postgres
from app.main import create_app
from app.rebate.figures import forget_answers
from app.rebate.settings import forget_rebate_settings
from graphql_schema.page_cache import forget_pages
from tests.support.sql_count import CountingApp
from workers.runtime import worker_options

ADMIN_TOKEN = "test-admin-token"
SECRET_KEY = "test-secret-key-of-thirty-two-bytes-or-more"


async def _flush_redis(url: str) -> None:
    """A run starts with no jobs left over from an earlier one."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """DATABASE_URL when CI gives one (a fresh PostgreSQL database), else a new SQLite file."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    folder = Path(tempfile.mkdtemp(prefix="rebate-test-"))
    return f"sqlite://{folder / 'test.sqlite3'}"


class LiveServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self.settings = Settings(
            app_env="test",
            database_url=test_database_url(),
            secret_key=SECRET_KEY,
            admin_token=ADMIN_TOKEN,
            wechat_fake=True,
            # Tests run the timers themselves when they mean to: nothing moves behind their back.
            jobs_interval_seconds=0,
            # The suite sends hundreds of mutations a minute from one address.
            mutation_rate_limit_per_minute=0,
        )
        self.app = create_app(self.settings, public_base_url=self.base_url)
        # Served through the statement counter (tests/support/sql_count.py).
        self.counting = CountingApp(self.app)
        config = uvicorn.Config(
            self.counting, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self.worker = None
        self._worker_task: asyncio.Task[None] | None = None

    @property
    def services(self):
        return self.app.state.services

    async def start(self) -> None:
        if self.settings.redis_url:
            await _flush_redis(self.settings.redis_url)
        self._task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the test server stopped during start-up")
            await asyncio.sleep(0.02)
        if self.settings.redis_url:
            # The production topology: the API hands settlement to an arq worker over Redis.
            from arq.connections import RedisSettings
            from arq.worker import Worker

            # Polled often: tests wait for each settlement one after the other.
            options = {**worker_options(self.services.wechat, timers=False), "poll_delay": 0.005}
            self.worker = Worker(
                **options,
                redis_settings=RedisSettings.from_dsn(self.settings.redis_url),
                handle_signals=False,
            )
            self._worker_task = asyncio.get_running_loop().create_task(self.worker.main())
            # Its start-up catches up on due work: let it finish before a test empties the tables.
            while not self.worker.ctx.get("ready"):
                if self._worker_task.done():
                    self._worker_task.result()
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.worker is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
            await self.worker.close()
        self.server.should_exit = True
        if self._task is not None:
            await self._task

    async def wipe(self) -> None:
        """Empty every table between tests, keeping the schema."""
        await self.services.jobs.drain()
        # Withdrawal ids start again at 1 in the emptied tables; WeChat's (the fake's) memory of
        # paid transfer numbers must start again too.
        self.app.routes[-1].app.state.wechat.transfers.clear()
        # Ids, versions and revisions start again in the emptied tables: what is kept under
        # them must go.
        forget_answers()
        forget_rebate_settings()
        forget_pages()
        conn = connections.get("default")
        tables = [
            model._meta.db_table
            for model in Tortoise.apps["models"].values()  # type: ignore[index]
        ]
        if is_postgres(self.settings.database_url):
            await conn.execute_script(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE;")
        else:
            script = "".join(f"DELETE FROM {table};" for table in tables)
            await conn.execute_script(
                "PRAGMA foreign_keys=OFF;" + script + "DELETE FROM sqlite_sequence;"
                "PRAGMA foreign_keys=ON;"
            )
