"""Starlette endpoints for WeChat Pay v3 payment and v2 refund notifications, from factories, and
the door that answers v2 payment notifications ahead of Starlette."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from app.wechat.credentials import WeChatCredentials
from app.wechat.pay_notify import InvalidNotification, PaymentNotice, reply_xml
from app.wechat.pay_v3 import parse_v3_payment_notification, v3_fail_body
from app.wechat.refund_notify import RefundNotice, parse_v2_refund_notification

log = logging.getLogger("rebate.wechat")

MAX_NOTIFICATION_BYTES = 64 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]
PaymentCallback = Callable[[PaymentNotice], Awaitable[tuple[bool, str]]]
RefundCallback = Callable[[RefundNotice], Awaitable[tuple[bool, str]]]


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int = MAX_NOTIFICATION_BYTES) -> bytes:
    """The body, refusing to buffer more than `limit` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge()
    body = await _receive_body(request.receive, limit)
    if body is None:
        raise ClientDisconnect()
    return body


async def _receive_body(receive: Any, limit: int) -> bytes | None:
    """The body from ASGI's `receive`, raising `_TooLarge` once more than `limit` bytes came
    (the rest is not buffered); None when the caller went away before sending it all."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


XmlAnswer = Callable[[bytes], Awaitable[str]]


class XmlPostDoor:
    """ASGI middleware that answers the requests to one path itself: a POST from its body, with
    XML; any other method 405. Requests to other paths go on to the app.

    For WeChat Pay's v2 payment notifications, the busiest caller of the server: each passed
    through Starlette's exception layer, routing, Request and Response objects, which cost
    93,000 instructions a request (callgrind: a bare endpoint 126,000, the same in a Starlette
    route 218,000), as much as uvicorn itself. In the notify benchmark the server's CPU per
    notification went from 0.215 to 0.148 ms (medians of six runs each, alternating). A
    failure of `answer` goes on up to the middleware outside, which answers 500, as a route's
    would.
    """

    def __init__(
        self,
        app: Any,
        path: str,
        answer: XmlAnswer,
        too_large: str,
        limit: int = MAX_NOTIFICATION_BYTES,
    ) -> None:
        self.app = app
        self.path = path
        self.answer = answer
        self.too_large = too_large.encode()
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _send(send, 405, b"Method Not Allowed", b"text/plain", ((b"allow", b"POST"),))
            return
        try:
            body = await _receive_body(receive, self.limit)
        except _TooLarge:
            # Refused with what came: the rest is not buffered, whatever its length.
            await _send(send, 200, self.too_large, b"application/xml")
            return
        if body is None:
            return
        data = (await self.answer(body)).encode()
        await _send(send, 200, data, b"application/xml")


async def _send(
    send: Any, status: int, body: bytes, content_type: bytes, extra: tuple[Any, ...] = ()
) -> None:
    headers = [(b"content-length", b"%d" % len(body)), (b"content-type", content_type), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _v3_fail(message: str, status_code: int = 400) -> Response:
    return Response(v3_fail_body(message), status_code=status_code, media_type="application/json")


def _xml(text: str) -> Response:
    return Response(text, media_type="application/xml")


def v3_notify_endpoint(
    creds: WeChatCredentials,
    on_payment: PaymentCallback,
    clock: Callable[[], datetime] = _utc_now,
) -> Endpoint:
    """`POST /wechat/pay/notify/v3`: 204 when `on_payment` accepts the notice, else 400 FAIL JSON.

    `on_payment` is called only for an authenticated notice and answers (accepted, reason); it
    must be idempotent, because WeChat repeats a notification until it gets a 2xx.
    """

    async def endpoint(request: Request) -> Response:
        try:
            body = await _read_body(request)
        except _TooLarge:
            return _v3_fail("body too large", 413)
        try:
            notice = parse_v3_payment_notification(request.headers, body, creds, now=clock())
        except InvalidNotification as exc:
            log.warning("v3 payment notification refused: %s", exc.reason)
            return _v3_fail(exc.reason)
        try:
            accepted, reason = await on_payment(notice)
        except Exception:
            # WeChat retries on any non-2xx: an answer in its format beats a bare 500 page.
            log.exception("v3 payment notification %s failed", notice.out_trade_no)
            return _v3_fail("internal error", 500)
        if not accepted:
            log.warning("v3 payment notification %s refused: %s", notice.out_trade_no, reason)
            return _v3_fail(reason)
        return Response(status_code=204)

    return endpoint


def refund_notify_endpoint(creds: WeChatCredentials, on_refund: RefundCallback) -> Endpoint:
    """`POST /wechat/pay/refund-notify`: the v2 SUCCESS XML when `on_refund` accepts, else FAIL.

    `on_refund` is called only for a notice whose `req_info` decrypted with our API key; it must
    be idempotent, because WeChat repeats a notification until it gets SUCCESS.
    """

    async def endpoint(request: Request) -> Response:
        try:
            body = await _read_body(request)
        except _TooLarge:
            return _xml(reply_xml(False, "body too large"))
        try:
            notice = parse_v2_refund_notification(body, creds)
        except InvalidNotification as exc:
            log.warning("refund notification refused: %s", exc.reason)
            return _xml(reply_xml(False, exc.reason))
        try:
            accepted, reason = await on_refund(notice)
        except Exception:
            log.exception("refund notification %s failed", notice.out_refund_no)
            return Response(
                reply_xml(False, "internal error"), status_code=500, media_type="application/xml"
            )
        if not accepted:
            log.warning("refund notification %s refused: %s", notice.out_refund_no, reason)
            return _xml(reply_xml(False, reason))
        return _xml(reply_xml(True))

    return endpoint
