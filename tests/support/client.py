"""Talking to the server as the mini-program, the operator and WeChat do: over HTTP only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.server import ADMIN_TOKEN

# A merchant application every field of which is valid.
APPLICATION = {
    "storeName": "街角咖啡",
    "contactName": "王五",
    "phone": "13800138000",
    "address": "上海市黄浦区南京东路1号",
    "licenseNo": "91310101MA1FPX1234",
}


class GraphQLError(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors

    @property
    def code(self) -> str | None:
        return (self.errors[0].get("extensions") or {}).get("code")


class Api:
    """One party's view of the API: anonymous, a consumer (after `login`) or the operator."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token
        self.user_id: str | None = None

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            "graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.raw(query, variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"]

    async def counted(self, query: str, **variables: Any) -> tuple[dict[str, Any], int]:
        """The data of a request and the number of SQL statements the server ran for it."""
        headers = {"x-count-sql": "1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = await self.http.post(
            "graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        return body["data"], int(response.headers["x-sql-statements"])

    async def error(self, query: str, **variables: Any) -> GraphQLError:
        """The error a request must give; fails the test when it succeeds."""
        body = await self.raw(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return GraphQLError(body["errors"])

    def as_admin(self) -> Api:
        return Api(self.http, ADMIN_TOKEN)

    async def login(self, code: str, **extra: Any) -> Api:
        data = await Api(self.http)(
            """mutation($code: String!, $ref: String, $nick: String) {
                 login(code: $code, referrerCode: $ref, nickname: $nick) { token user { id } } }""",
            code=code,
            ref=extra.get("referrer_code"),
            nick=extra.get("nickname", code.title()),
        )
        consumer = Api(self.http, data["login"]["token"])
        consumer.user_id = data["login"]["user"]["id"]
        return consumer


ORDER_FIELDS = """id outTradeNo kind status userId totalFen deductionFen payableFen settled
  lines { id productId quantity amountFen paidFen queueKey }
  payParams { appId timeStamp nonceStr package signType paySign }"""

ENTRY_FIELDS = """id queueKey orderId orderLineId status paidFen ratioBp ratioSource entitlementFen
  rewardedFen remainingFen progressBp number position amountAheadFen estimatedWaitDays
  lotteryAvailable process { items { fromOrderId amountFen payerNickname } nextCursor }"""


async def create_product(admin: Api, name: str, price_fen: int, **rebate: Any) -> str:
    data = await admin(
        """mutation($input: ProductInput!) { upsertProduct(input: $input) { id } }""",
        input={"name": name, "priceFen": price_fen, "rebate": {"enabled": True, **rebate}},
    )
    return data["upsertProduct"]["id"]


async def buy(consumer: Api, product_id: str, quantity: int = 1) -> dict[str, Any]:
    data = await consumer(
        "mutation($input: CreateOrderInput!) { createOrder(input: $input) { "
        + ORDER_FIELDS
        + " } }",
        input={"lines": [{"productId": product_id, "quantity": quantity}]},
    )
    return data["createOrder"]


async def wechat_pays(
    http: httpx.AsyncClient, out_trade_no: str, **override: Any
) -> dict[str, Any]:
    """The fake WeChat takes the consumer's money and notifies the server, as WeChat would."""
    response = await http.post("mock/control/pay", json={"outTradeNo": out_trade_no, **override})
    response.raise_for_status()
    return response.json()


async def order_of(api: Api, order_id: str) -> dict[str, Any]:
    return (await api(f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}", id=order_id))[
        "order"
    ]


async def wait_settled(api: Api, order_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Settlement runs after WeChat's answer; poll the order until it says so."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        order = await order_of(api, order_id)
        if order["settled"]:
            return order
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"order {order_id} was not settled in {timeout}s: {order}")
        await asyncio.sleep(0.02)


async def pay_and_settle(consumer: Api, order: dict[str, Any]) -> dict[str, Any]:
    reply = await wechat_pays(consumer.http, order["outTradeNo"])
    assert "SUCCESS" in reply["reply"], reply
    return await wait_settled(consumer, order["id"])


async def my_entries(consumer: Api) -> list[dict[str, Any]]:
    data = await consumer(f"{{ myEntries(first: 100) {{ items {{ {ENTRY_FIELDS} }} }} }}")
    return data["myEntries"]["items"]
