"""A fake WeChat (API, Pay v2, v3 notifications, a control panel) speaking our protocol."""

from __future__ import annotations

import base64
import secrets
import struct
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from wechatpy.pay.utils import dict_to_xml

from app.wechat.credentials import WeChatCredentials
from miniprogram_mock.signing import (
    WECHAT_TZ,
    build_v2_payment_notification,
    build_v2_refund_notification,
    build_v3_payment_notification,
    fail_xml,
    format_refund_time,
    format_time_end,
    parse_xml,
    sign_v2,
    signed_xml,
)

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_LIFETIME_SECONDS = 7200
NOTIFY_TIMEOUT_SECONDS = 10.0


@dataclass
class FakeOrder:
    out_trade_no: str
    total_fee: int
    notify_url: str
    openid: str
    body: str
    prepay_id: str
    state: str = "NOTPAY"
    transaction_id: str | None = None
    time_end: str | None = None


@dataclass
class FakeRefund:
    out_refund_no: str
    refund_id: str
    out_trade_no: str
    transaction_id: str
    total_fee: int
    refund_fee: int
    # Where the refund's result is posted: given at refund, or derived from the order's notify_url.
    notify_url: str


@dataclass
class FakeTransfer:
    partner_trade_no: str
    openid: str
    amount: int
    desc: str
    check_name: str
    payment_no: str
    payment_time: str
    re_user_name: str | None = None


@dataclass
class FakeWeChatState:
    """Everything the fake remembers; reachable as `app.state.wechat` for tests and the demo."""

    creds: WeChatCredentials
    # Set to an ASGI transport to deliver notifications in-process instead of over the network.
    notify_transport: httpx.AsyncBaseTransport | None = None
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    access_tokens: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    wxa_codes: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    refunds: dict[str, str] = field(default_factory=dict)  # out_refund_no → refund_id
    refund_details: dict[str, FakeRefund] = field(default_factory=dict)  # by out_refund_no
    transfers: dict[str, FakeTransfer] = field(default_factory=dict)  # by partner_trade_no


def refund_notify_url(notify_url: str) -> str:
    """The product's refund notification URL beside its payment one (…/notify → …/refund-notify)."""
    head, sep, tail = notify_url.rpartition("notify")
    if not sep or tail.strip("/"):
        return notify_url.rstrip("/") + "/refund-notify"
    return head + "refund-notify" + tail


def _xml(text: str) -> Response:
    return Response(text, media_type="text/xml; charset=utf-8")


def _wx_error(errcode: int, errmsg: str) -> JSONResponse:
    # WeChat answers API errors with HTTP 200 and an errcode.
    return JSONResponse({"errcode": errcode, "errmsg": errmsg})


def _png_with_text(**text: str) -> bytes:
    """A valid 1×1 PNG carrying `text` in tEXt chunks, so a test can read back what it encodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    chunks = [chunk(b"IHDR", header)]
    chunks += [
        chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("utf-8"))
        for key, value in text.items()
    ]
    chunks += [chunk(b"IDAT", zlib.compress(b"\x00\x00")), chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def create_fake_wechat(
    creds: WeChatCredentials,
    *,
    production: bool = False,
    notify_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The fake WeChat as an ASGI app, meant to be mounted at `/mock`."""
    if production:
        raise RuntimeError("the fake WeChat is never served in production")
    state = FakeWeChatState(creds=creds, notify_transport=notify_transport)

    def check_app(params: Any) -> JSONResponse | None:
        if params.get("appid") != creds.app_id:
            return _wx_error(40013, "invalid appid")
        if params.get("secret") != creds.app_secret:
            return _wx_error(40125, "invalid appsecret")
        return None

    def check_token(request: Request) -> JSONResponse | None:
        if request.query_params.get("access_token") not in state.access_tokens:
            return _wx_error(40001, "invalid credential, access_token is invalid or not latest")
        return None

    async def token(request: Request) -> Response:
        params = request.query_params
        if params.get("grant_type") != "client_credential":
            return _wx_error(40002, "invalid grant_type")
        if error := check_app(params):
            return error
        access_token = secrets.token_urlsafe(32)
        state.access_tokens.add(access_token)
        return JSONResponse({"access_token": access_token, "expires_in": TOKEN_LIFETIME_SECONDS})

    async def jscode2session(request: Request) -> Response:
        params = request.query_params
        if params.get("grant_type") != "authorization_code":
            return _wx_error(40002, "invalid grant_type")
        if error := check_app(params):
            return error
        code = params.get("js_code", "")
        if not code:
            return _wx_error(41008, "missing code")
        if code.startswith("invalid"):
            return _wx_error(40029, "invalid code")
        session_key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        return JSONResponse({"openid": "mock-openid-" + code, "session_key": session_key})

    async def wxa_code_unlimited(request: Request) -> Response:
        if error := check_token(request):
            return error
        try:
            payload = await request.json()
        except ValueError:
            return _wx_error(47001, "data format error")
        scene = payload.get("scene") if isinstance(payload, dict) else None
        if not isinstance(scene, str) or not 0 < len(scene) <= 32:
            return _wx_error(40169, "invalid length for scene")
        page = payload.get("page") or ""
        state.wxa_codes.append({"scene": scene, "page": page})
        return Response(_png_with_text(scene=scene, page=page), media_type="image/png")

    async def subscribe_send(request: Request) -> Response:
        if error := check_token(request):
            return error
        try:
            payload = await request.json()
        except ValueError:
            return _wx_error(47001, "data format error")
        if not isinstance(payload, dict) or not payload.get("touser"):
            return _wx_error(40003, "invalid openid")
        if not payload.get("template_id") or not isinstance(payload.get("data"), dict):
            return _wx_error(47003, "argument invalid! data.template_id or data.data is missing")
        state.messages.append(payload)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def read_pay_request(request: Request) -> dict[str, str] | Response:
        fields = parse_xml(await request.body())
        if fields is None:
            return _xml(fail_xml("XML格式错误"))
        sign_type = fields.get("sign_type") or "MD5"
        if sign_type != "MD5" or fields.get("sign") != sign_v2(fields, creds.api_key):
            return _xml(fail_xml("签名错误"))
        if fields.get("appid") != creds.app_id or fields.get("mch_id") != creds.mch_id:
            return _xml(fail_xml("appid和mch_id不匹配"))
        return fields

    def pay_answer(result_code: str = "SUCCESS", **extra: Any) -> Response:
        fields = {
            "return_code": "SUCCESS",
            "return_msg": "OK",
            "appid": creds.app_id,
            "mch_id": creds.mch_id,
            "result_code": result_code,
            **extra,
        }
        return _xml(signed_xml(fields, creds.api_key))

    async def unified_order(request: Request) -> Response:
        fields = await read_pay_request(request)
        if isinstance(fields, Response):
            return fields
        missing = [
            name
            for name in ("body", "out_trade_no", "total_fee", "notify_url", "trade_type")
            if not fields.get(name)
        ]
        if fields.get("trade_type") == "JSAPI" and not fields.get("openid"):
            missing.append("openid")
        if missing:
            return _xml(fail_xml(f"缺少参数 {','.join(missing)}"))
        if not fields["total_fee"].isdigit() or int(fields["total_fee"]) <= 0:
            return _xml(fail_xml("total_fee 格式错误"))
        out_trade_no, total_fee = fields["out_trade_no"], int(fields["total_fee"])
        order = state.orders.get(out_trade_no)
        if order is not None:
            if order.state == "SUCCESS":
                return pay_answer("FAIL", err_code="ORDERPAID", err_code_des="该订单已支付")
            if order.total_fee != total_fee:
                return pay_answer(
                    "FAIL", err_code="INVALID_REQUEST", err_code_des="201 商户订单号重复"
                )
            order.notify_url = fields["notify_url"]
        else:
            order = FakeOrder(
                out_trade_no=out_trade_no,
                total_fee=total_fee,
                notify_url=fields["notify_url"],
                openid=fields["openid"],
                body=fields["body"],
                prepay_id="wx"
                + datetime.now(WECHAT_TZ).strftime("%Y%m%d%H%M%S")
                + secrets.token_hex(10),
            )
            state.orders[out_trade_no] = order
        return pay_answer(
            openid=order.openid,
            prepay_id=order.prepay_id,
            trade_type="JSAPI",
        )

    async def order_query(request: Request) -> Response:
        fields = await read_pay_request(request)
        if isinstance(fields, Response):
            return fields
        order = state.orders.get(fields.get("out_trade_no", ""))
        if order is None and fields.get("transaction_id"):
            order = next(
                (o for o in state.orders.values() if o.transaction_id == fields["transaction_id"]),
                None,
            )
        if order is None:
            return pay_answer("FAIL", err_code="ORDERNOTEXIST", err_code_des="订单不存在")
        if order.state != "SUCCESS":
            return pay_answer(
                out_trade_no=order.out_trade_no,
                trade_state="NOTPAY",
                trade_state_desc="订单未支付",
            )
        return pay_answer(
            out_trade_no=order.out_trade_no,
            trade_state="SUCCESS",
            trade_state_desc="支付成功",
            openid=order.openid,
            is_subscribe="N",
            trade_type="JSAPI",
            bank_type="OTHERS",
            total_fee=order.total_fee,
            cash_fee=order.total_fee,
            fee_type="CNY",
            transaction_id=order.transaction_id,
            time_end=order.time_end,
        )

    async def json_payload(request: Request) -> dict[str, Any] | Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        return payload

    async def post_notification(
        url: str, content: bytes, headers: dict[str, str]
    ) -> httpx.Response | Response:
        try:
            async with httpx.AsyncClient(
                transport=state.notify_transport, timeout=NOTIFY_TIMEOUT_SECONDS
            ) as client:
                return await client.post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"error": f"notify_url unreachable: {type(exc).__name__}"}, status_code=502
            )

    def mark_paid(order: FakeOrder) -> None:
        if order.state != "SUCCESS":
            order.state = "SUCCESS"
            order.transaction_id = (
                "4200" + datetime.now(WECHAT_TZ).strftime("%Y%m%d") + secrets.token_hex(9)
            )
            order.time_end = format_time_end()

    async def control_pay(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        out_trade_no = payload.get("outTradeNo") if isinstance(payload, dict) else None
        total_fee = payload.get("totalFee") if isinstance(payload, dict) else None
        given_transaction_id = payload.get("transactionId") if isinstance(payload, dict) else None
        # The payment's time as WeChat reports it (yyyyMMddHHmmss, Beijing time): lets a test
        # pay inside or outside a reward window.
        given_time_end = payload.get("timeEnd") if isinstance(payload, dict) else None
        if given_time_end is not None:
            try:
                datetime.strptime(str(given_time_end), "%Y%m%d%H%M%S")
            except ValueError:
                return JSONResponse({"error": "timeEnd is yyyyMMddHHmmss"}, status_code=400)
        if not isinstance(out_trade_no, str):
            return JSONResponse({"error": "outTradeNo is required"}, status_code=400)
        if total_fee is not None and (
            isinstance(total_fee, bool) or not isinstance(total_fee, int)
        ):
            return JSONResponse({"error": "totalFee is an integer or null"}, status_code=400)
        if given_transaction_id is not None and not isinstance(given_transaction_id, str):
            return JSONResponse({"error": "transactionId is a string or null"}, status_code=400)
        order = state.orders.get(out_trade_no)
        if order is None:
            return JSONResponse({"error": f"unknown outTradeNo {out_trade_no}"}, status_code=404)
        if order.state != "SUCCESS":
            order.state = "SUCCESS"
            order.transaction_id = given_transaction_id or (
                "4200" + datetime.now(WECHAT_TZ).strftime("%Y%m%d") + secrets.token_hex(9)
            )
            order.time_end = str(given_time_end) if given_time_end else format_time_end()
        transaction_id = given_transaction_id or order.transaction_id or ""
        if payload.get("silent"):
            # The money moved but the notification is lost: only pay/orderquery can tell.
            return JSONResponse({"status": None, "reply": None, "transactionId": transaction_id})
        notice = build_v2_payment_notification(
            creds,
            out_trade_no=order.out_trade_no,
            transaction_id=transaction_id,
            total_fee=order.total_fee if total_fee is None else total_fee,
            openid=order.openid,
            time_end=datetime.strptime(order.time_end or "", "%Y%m%d%H%M%S"),
        )
        try:
            async with httpx.AsyncClient(
                transport=state.notify_transport, timeout=NOTIFY_TIMEOUT_SECONDS
            ) as client:
                answer = await client.post(
                    order.notify_url,
                    content=notice,
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                )
        except httpx.HTTPError as exc:
            return JSONResponse(
                {
                    "error": f"notify_url unreachable: {type(exc).__name__}",
                    "transactionId": transaction_id,
                },
                status_code=502,
            )
        state.notifications.append(
            {"outTradeNo": order.out_trade_no, "status": answer.status_code, "reply": answer.text}
        )
        return JSONResponse(
            {"status": answer.status_code, "reply": answer.text, "transactionId": transaction_id}
        )

    async def control_pay_v3(request: Request) -> Response:
        payload = await json_payload(request)
        if isinstance(payload, Response):
            return payload
        out_trade_no = payload.get("outTradeNo")
        total_fee = payload.get("totalFee")
        timestamp = payload.get("timestamp")
        if not isinstance(out_trade_no, str):
            return JSONResponse({"error": "outTradeNo is required"}, status_code=400)
        for name, value in (("totalFee", total_fee), ("timestamp", timestamp)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return JSONResponse({"error": f"{name} is an integer or null"}, status_code=400)
        flags = {name: payload.get(name, False) for name in ("tamper", "wrongSignature")}
        if any(not isinstance(value, bool) for value in flags.values()):
            return JSONResponse(
                {"error": "tamper and wrongSignature are booleans"}, status_code=400
            )
        if creds.fake_pay_private_key_pem is None:
            return JSONResponse(
                {"error": "the fake has no private key for the configured v3 public key"},
                status_code=409,
            )
        order = state.orders.get(out_trade_no)
        if order is None:
            return JSONResponse({"error": f"unknown outTradeNo {out_trade_no}"}, status_code=404)
        mark_paid(order)
        headers, body = build_v3_payment_notification(
            creds,
            out_trade_no=order.out_trade_no,
            transaction_id=order.transaction_id or "",
            total_fee=order.total_fee if total_fee is None else total_fee,
            openid=order.openid,
            success_time=datetime.strptime(order.time_end or "", "%Y%m%d%H%M%S"),
            timestamp=timestamp,
            tamper=flags["tamper"],
            wrong_signature=flags["wrongSignature"],
        )
        answer = await post_notification(order.notify_url.rstrip("/") + "/v3", body, headers)
        if isinstance(answer, Response):
            return answer
        state.notifications.append(
            {"outTradeNo": order.out_trade_no, "status": answer.status_code, "reply": answer.text}
        )
        return JSONResponse(
            {
                "status": answer.status_code,
                "body": answer.text,
                "transactionId": order.transaction_id,
            }
        )

    async def control_refund_notify(request: Request) -> Response:
        payload = await json_payload(request)
        if isinstance(payload, Response):
            return payload
        out_refund_no = payload.get("outRefundNo")
        refund_status = payload.get("refundStatus", "SUCCESS")
        if not isinstance(out_refund_no, str):
            return JSONResponse({"error": "outRefundNo is required"}, status_code=400)
        if refund_status not in ("SUCCESS", "CHANGE", "REFUNDCLOSE"):
            return JSONResponse(
                {"error": "refundStatus is SUCCESS, CHANGE or REFUNDCLOSE"}, status_code=400
            )
        refund = state.refund_details.get(out_refund_no)
        if refund is None:
            return JSONResponse({"error": f"unknown outRefundNo {out_refund_no}"}, status_code=404)
        body = build_v2_refund_notification(
            creds,
            out_trade_no=refund.out_trade_no,
            out_refund_no=refund.out_refund_no,
            refund_id=refund.refund_id,
            transaction_id=refund.transaction_id,
            total_fee=refund.total_fee,
            refund_fee=refund.refund_fee,
            refund_status=refund_status,
        )
        answer = await post_notification(
            refund.notify_url, body, {"Content-Type": "text/xml; charset=utf-8"}
        )
        if isinstance(answer, Response):
            return answer
        state.notifications.append(
            {"outRefundNo": out_refund_no, "status": answer.status_code, "reply": answer.text}
        )
        return JSONResponse({"status": answer.status_code, "reply": answer.text})

    async def control_orders(request: Request) -> Response:
        return JSONResponse([asdict(order) for order in state.orders.values()])

    async def refund(request: Request) -> Response:
        fields = await read_pay_request(request)
        if isinstance(fields, Response):
            return fields
        order = state.orders.get(fields.get("out_trade_no", ""))
        if order is None or order.state != "SUCCESS":
            return pay_answer("FAIL", err_code="ORDERNOTEXIST", err_code_des="订单不存在")
        out_refund_no = fields.get("out_refund_no", "")
        refund_fee, total_fee = fields.get("refund_fee", ""), fields.get("total_fee", "")
        if not out_refund_no or not refund_fee.isdigit() or not total_fee.isdigit():
            return _xml(fail_xml("缺少参数 out_refund_no, refund_fee, total_fee"))
        if int(total_fee) != order.total_fee or not 0 < int(refund_fee) <= order.total_fee:
            return pay_answer("FAIL", err_code="INVALID_REQUEST", err_code_des="退款金额错误")
        # Same out_refund_no, same refund: WeChat refunds once however often it is asked.
        refund_id = state.refunds.setdefault(out_refund_no, "50" + secrets.token_hex(12))
        state.refund_details.setdefault(
            out_refund_no,
            FakeRefund(
                out_refund_no=out_refund_no,
                refund_id=refund_id,
                out_trade_no=order.out_trade_no,
                transaction_id=order.transaction_id or "",
                total_fee=order.total_fee,
                refund_fee=int(refund_fee),
                notify_url=fields.get("notify_url") or refund_notify_url(order.notify_url),
            ),
        )
        return pay_answer(
            transaction_id=order.transaction_id,
            out_trade_no=order.out_trade_no,
            out_refund_no=out_refund_no,
            refund_id=refund_id,
            refund_fee=refund_fee,
            total_fee=total_fee,
            cash_fee=total_fee,
        )

    def transfer_answer(result_code: str = "SUCCESS", **extra: Any) -> Response:
        # Transfers answer with mch_appid/mchid and, unlike the other v2 calls, no signature.
        fields = {
            "return_code": "SUCCESS",
            "return_msg": "",
            "mch_appid": creds.app_id,
            "mchid": creds.mch_id,
            "nonce_str": secrets.token_hex(16),
            "result_code": result_code,
            **extra,
        }
        return _xml(dict_to_xml({key: str(value) for key, value in fields.items()}))

    def transfer_error(err_code: str, err_code_des: str) -> Response:
        return transfer_answer("FAIL", err_code=err_code, err_code_des=err_code_des)

    async def transfer(request: Request) -> Response:
        fields = parse_xml(await request.body())
        if fields is None:
            return _xml(fail_xml("XML格式错误"))
        if fields.get("sign") != sign_v2(fields, creds.api_key):
            return transfer_error("SIGN_ERROR", "签名错误")
        if fields.get("mch_appid") != creds.app_id or fields.get("mchid") != creds.mch_id:
            return transfer_error("PARAM_ERROR", "mch_appid与mchid不匹配")
        missing = [
            name
            for name in ("partner_trade_no", "openid", "check_name", "amount", "desc")
            if not fields.get(name)
        ]
        if missing:
            return transfer_error("PARAM_ERROR", f"缺少参数 {','.join(missing)}")
        amount = fields["amount"]
        if not amount.isdigit() or int(amount) <= 0:
            return transfer_error("AMOUNT_LIMIT", "付款金额必须大于0")
        check_name = fields["check_name"]
        if check_name not in ("NO_CHECK", "FORCE_CHECK"):
            return transfer_error("PARAM_ERROR", "check_name 参数错误")
        if check_name == "FORCE_CHECK" and not fields.get("re_user_name"):
            return transfer_error("PARAM_ERROR", "FORCE_CHECK 需要 re_user_name")
        partner_trade_no = fields["partner_trade_no"]
        done = state.transfers.get(partner_trade_no)
        if done is None:
            now = datetime.now(WECHAT_TZ)
            done = FakeTransfer(
                partner_trade_no=partner_trade_no,
                openid=fields["openid"],
                amount=int(amount),
                desc=fields["desc"],
                check_name=check_name,
                re_user_name=fields.get("re_user_name") or None,
                payment_no="1000" + now.strftime("%Y%m%d") + secrets.token_hex(8),
                payment_time=format_refund_time(now),
            )
            state.transfers[partner_trade_no] = done
        elif (done.openid, done.amount) != (fields["openid"], int(amount)):
            # One partner_trade_no is one payment: the same again is answered, another refused.
            return transfer_error("PARAM_ERROR", "商户订单号重复，但参数不一致")
        return transfer_answer(
            partner_trade_no=done.partner_trade_no,
            payment_no=done.payment_no,
            payment_time=done.payment_time,
        )

    async def control_transfers(request: Request) -> Response:
        return JSONResponse([asdict(done) for done in state.transfers.values()])

    async def control_messages(request: Request) -> Response:
        return JSONResponse(state.messages)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/wx/cgi-bin/token", token, methods=["GET"]),
            Route("/wx/sns/jscode2session", jscode2session, methods=["GET"]),
            Route("/wx/wxa/getwxacodeunlimit", wxa_code_unlimited, methods=["POST"]),
            Route("/wx/cgi-bin/message/subscribe/send", subscribe_send, methods=["POST"]),
            Route("/pay/pay/unifiedorder", unified_order, methods=["POST"]),
            Route("/pay/pay/orderquery", order_query, methods=["POST"]),
            Route("/pay/secapi/pay/refund", refund, methods=["POST"]),
            Route("/pay/mmpaymkttransfers/promotion/transfers", transfer, methods=["POST"]),
            Route("/control/pay", control_pay, methods=["POST"]),
            Route("/control/pay-v3", control_pay_v3, methods=["POST"]),
            Route("/control/refund-notify", control_refund_notify, methods=["POST"]),
            Route("/control/orders", control_orders, methods=["GET"]),
            Route("/control/transfers", control_transfers, methods=["GET"]),
            Route("/control/messages", control_messages, methods=["GET"]),
        ]
    )
    app.state.wechat = state
    return app
