"""`rebate serve` leaves what it holds from start-up out of the collector's full passes, and
gives its young generation room for the requests in flight (app/serving.py, app/startup.py)."""

from __future__ import annotations

import asyncio
import gc

import uvicorn

from app.serving import Server
from app.startup import YOUNG_GENERATION
from tests.support.server import free_port


async def _hello(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


async def test_objects_alive_at_start_are_frozen_once_started():
    gc.unfreeze()
    thresholds = gc.get_threshold()
    server = Server(uvicorn.Config(_hello, port=free_port(), log_level="warning", lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.01)
        frozen = gc.get_freeze_count()
        # The modules of this very process are among them: many thousands of objects.
        assert frozen > 10_000
        assert len(gc.get_objects()) < frozen
        assert gc.get_threshold() == (YOUNG_GENERATION, *thresholds[1:])
        assert thresholds[0] < YOUNG_GENERATION
    finally:
        server.should_exit = True
        await task
        gc.unfreeze()
        gc.set_threshold(*thresholds)
