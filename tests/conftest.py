"""One live server for the whole run; every test starts from empty tables and ends audited."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from app.ledger.audit import audit
from tests.support.client import Api
from tests.support.server import LiveServer

# CI replays the same examples every run, so that its verdict is about the change, not the dice;
# local runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
async def live_server() -> AsyncIterator[LiveServer]:
    server = LiveServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def server(live_server: LiveServer) -> AsyncIterator[LiveServer]:
    await live_server.wipe()
    yield live_server
    await live_server.services.jobs.drain()
    violations = await audit()
    assert violations == [], "the books do not balance after this test:\n" + "\n".join(violations)


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def anonymous(http: httpx.AsyncClient) -> Api:
    return Api(http)


@pytest.fixture
def admin(http: httpx.AsyncClient) -> Api:
    return Api(http).as_admin()
