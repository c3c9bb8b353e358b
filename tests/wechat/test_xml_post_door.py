"""The door that answers WeChat Pay v2 notifications ahead of Starlette (app/wechat/http.py)."""

from __future__ import annotations

from typing import Any

import pytest

from app.wechat.http import XmlPostDoor
from app.wechat.pay_notify import reply_xml
from miniprogram_mock.signing import build_v2_payment_notification
from tests.support.client import buy, create_product, order_of

SUCCESS = "<return_code><![CDATA[SUCCESS]]></return_code>"
TOO_LARGE = "<xml>too large</xml>"


class _Exchange:
    """One request played against an ASGI app: the messages it receives and what it sent."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.incoming = list(messages)
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return self.incoming.pop(0)

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.sent[1:])


def _door(answered: list[bytes], limit: int = 100) -> XmlPostDoor:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def answer(body: bytes) -> str:
        answered.append(body)
        return f"<xml>{len(body)} bytes</xml>"

    return XmlPostDoor(inner, path="/notify", answer=answer, too_large=TOO_LARGE, limit=limit)


def _scope(path: str = "/notify", method: str = "POST") -> dict[str, Any]:
    return {"type": "http", "path": path, "method": method, "headers": []}


def _part(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_in_parts_is_answered_whole() -> None:
    answered: list[bytes] = []
    exchange = _Exchange(_part(b"<xml>", True), _part(b"", True), _part(b"</xml>"))
    await _door(answered)(_scope(), exchange.receive, exchange.send)
    assert answered == [b"<xml></xml>"]
    assert exchange.status == 200
    assert exchange.headers == {b"content-length": b"19", b"content-type": b"application/xml"}
    assert exchange.body == b"<xml>11 bytes</xml>"


async def test_a_body_past_the_limit_is_refused_before_it_is_all_read() -> None:
    answered: list[bytes] = []
    exchange = _Exchange(_part(b"x" * 60, True), _part(b"x" * 60, True), _part(b"never read"))
    await _door(answered)(_scope(), exchange.receive, exchange.send)
    assert answered == []
    assert (exchange.status, exchange.body) == (200, TOO_LARGE.encode())
    assert exchange.incoming == [_part(b"never read")]
    # Exactly the limit is still answered.
    exchange = _Exchange(_part(b"x" * 100))
    await _door(answered)(_scope(), exchange.receive, exchange.send)
    assert answered == [b"x" * 100]


async def test_a_caller_gone_before_its_body_is_not_answered() -> None:
    answered: list[bytes] = []
    exchange = _Exchange(_part(b"<xml>", True), {"type": "http.disconnect"})
    await _door(answered)(_scope(), exchange.receive, exchange.send)
    assert (answered, exchange.sent) == ([], [])


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
async def test_other_methods_are_not_allowed(method: str) -> None:
    answered: list[bytes] = []
    exchange = _Exchange()
    await _door(answered)(_scope(method=method), exchange.receive, exchange.send)
    assert answered == []
    assert exchange.status == 405
    assert exchange.headers[b"allow"] == b"POST"


@pytest.mark.parametrize(
    "scope",
    [
        _scope("/notify/"),
        _scope("/graphql"),
        {"type": "lifespan"},
        {**_scope(), "type": "websocket"},
    ],
)
async def test_everything_else_goes_on_to_the_app(scope: dict[str, Any]) -> None:
    answered: list[bytes] = []
    exchange = _Exchange(_part(b"<xml/>"))
    await _door(answered)(scope, exchange.receive, exchange.send)
    assert answered == []
    assert exchange.status == 204


async def test_the_notify_url_through_the_server(server, anonymous, admin) -> None:
    product = await create_product(admin, "礼盒", 16800)
    buyer = await anonymous.login("x")
    order = await buy(buyer, product)
    body = build_v2_payment_notification(
        server.services.credentials,
        out_trade_no=order["outTradeNo"],
        transaction_id="4200000009",
        total_fee=order["payableFen"],
        openid="mock-openid-x",
    )
    response = await buyer.http.post("wechat/pay/notify", content=body)
    assert response.status_code == 200
    assert SUCCESS in response.text
    assert response.headers["content-type"] == "application/xml"
    # Outside production the answer still says how long the app took over it.
    assert response.headers["server-timing"].startswith("app;dur=")
    assert (await order_of(buyer, order["id"]))["status"] == "PAID"

    assert (await buyer.http.get("wechat/pay/notify")).status_code == 405
    too_large = await buyer.http.post("wechat/pay/notify", content=b"<xml>" + b" " * 70_000)
    assert (too_large.status_code, too_large.text) == (200, reply_xml(False, "body too large"))
