"""Setting a benchmark's scene through the public API, as the operator and the consumers would."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from app.bench.infra import ADMIN_TOKEN
from app.bench.report import Progress

T = TypeVar("T")

# A line per request of the scene-setting would bury the figures.
logging.getLogger("httpx").setLevel(logging.WARNING)


class ApiError(RuntimeError):
    pass


async def graphql(
    http: httpx.AsyncClient, query: str, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    if body.get("errors"):
        raise ApiError(f"{query.split('(')[0].strip()}: {body['errors']}")
    return body["data"]


async def create_product(http: httpx.AsyncClient, name: str, price_fen: int, **rebate: Any) -> str:
    data = await graphql(
        http,
        "mutation($input: ProductInput!) { upsertProduct(input: $input) { id } }",
        ADMIN_TOKEN,
        input={"name": name, "priceFen": price_fen, "rebate": {"enabled": True, **rebate}},
    )
    return data["upsertProduct"]["id"]


async def login(http: httpx.AsyncClient, code: str) -> str:
    """A consumer's session token (the fake WeChat turns any code into an openid)."""
    data = await graphql(
        http,
        "mutation($code: String!) { login(code: $code, nickname: $code) { token } }",
        code=code,
    )
    return data["login"]["token"]


async def buy(
    http: httpx.AsyncClient, token: str, product_id: str, lines: int = 1
) -> dict[str, Any]:
    """An order of `lines` one-piece lines of the product, awaiting payment."""
    data = await graphql(
        http,
        "mutation($input: CreateOrderInput!) { createOrder(input: $input) "
        "{ id outTradeNo payableFen status } }",
        token,
        input={"lines": [{"productId": product_id, "quantity": 1}] * lines},
    )
    return data["createOrder"]


async def gather_limited(
    factories: Sequence[Callable[[], Awaitable[T]]],
    *,
    concurrency: int,
    progress: Progress | None = None,
    stage: str = "setup",
) -> list[T]:
    """Run the calls with at most `concurrency` at once, in order of their results' positions."""
    results: list[Any] = [None] * len(factories)
    next_index = 0
    done = 0

    async def worker() -> None:
        nonlocal next_index, done
        while next_index < len(factories):
            index = next_index
            next_index += 1
            results[index] = await factories[index]()
            done += 1
            if progress is not None:
                progress.update(done, len(factories), stage)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return results
