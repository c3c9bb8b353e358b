"""WeChat mini-program and WeChat Pay v2 calls through wechatpy, every host from the credentials."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from wechatpy.client import WeChatClient
from wechatpy.exceptions import WeChatClientException, WeChatException, WeChatPayException
from wechatpy.pay import WeChatPay

from app.errors import BadInput, UpstreamError
from app.wechat.credentials import WeChatCredentials
from app.wechat.pay_notify import MalformedXml, parse_v2_xml, signature_matches

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 10.0

# Hosts wechatpy writes into its code; each is swapped for the configured base URL.
_WECHAT_API_ROOTS = ("https://api.weixin.qq.com/",)
_WECHAT_PAY_ROOTS = ("https://api.mch.weixin.qq.com/", "https://fraud.mch.weixin.qq.com/")

# jscode2session authenticates with appid + secret. wechatpy adds an access token to every call,
# which would fetch one first (and a token fetch needs the IP allow-list), so login skips it.
_TOKENLESS_ENDPOINTS = ("sns/jscode2session",)

_INVALID_LOGIN_CODE_ERRORS = frozenset({40029, 40163, 41008})
_STALE_TOKEN_ERRORS = frozenset({40001, 40014, 42001})

_OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_\-|*]{1,32}")
# WeChat takes only letters and digits in a transfer's merchant number.
_PARTNER_TRADE_NO = re.compile(r"[A-Za-z0-9]{1,32}")
_MAX_BODY_BYTES = 128
_TRANSFER_CHECKS = frozenset({"NO_CHECK", "FORCE_CHECK"})
TRANSFER_ENDPOINT = "mmpaymkttransfers/promotion/transfers"

# WeChat signs neither the answer of a transfer nor of its query; TLS is their only protection.
_UNSIGNED_ANSWERS = (TRANSFER_ENDPOINT, "mmpaymkttransfers/gettransferinfo")


class _TimeoutSession(requests.Session):
    """A session that never waits forever: wechatpy's token fetch passes no timeout at all."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)


def _rehost(url: str, roots: tuple[str, ...], base_url: str) -> str:
    for root in roots:
        if url.startswith(root):
            return base_url + url[len(root) :]
    return url


class _RoutedClient(WeChatClient):
    """wechatpy's API client with the configured base URL wherever wechatpy hard-codes a host."""

    def __init__(self, appid: str, secret: str, api_base_url: str, timeout: float) -> None:
        # Retries on a stale token are done once by the gateway: wechatpy's own retry recurses
        # without a bound when WeChat keeps answering 40001.
        super().__init__(appid, secret, timeout=timeout, auto_retry=False)
        self._api_root = api_base_url
        self.API_BASE_URL = api_base_url + "cgi-bin/"
        self._http = _TimeoutSession(timeout)

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        url_or_endpoint = _rehost(url_or_endpoint, _WECHAT_API_ROOTS, self._api_root)
        if "api_base_url" in kwargs:
            kwargs["api_base_url"] = _rehost(
                kwargs["api_base_url"], _WECHAT_API_ROOTS, self._api_root
            )
        if url_or_endpoint.endswith(_TOKENLESS_ENDPOINTS):
            # requests leaves out a parameter whose value is None, and wechatpy only adds a
            # token when the key is absent.
            kwargs.setdefault("params", {})["access_token"] = None
        return super()._request(method, url_or_endpoint, **kwargs)

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(
            url=self._api_root + "cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )

    def forget_access_token(self) -> None:
        self.session.delete(self.access_token_key)
        self.expires_at = None


class _SignatureMismatch(Exception):
    pass


class _RoutedPay(WeChatPay):
    """wechatpy's WeChat Pay v2 client at the configured base URL, checking answer signatures."""

    def __init__(
        self,
        appid: str,
        api_key: str,
        mch_id: str,
        api_base_url: str,
        timeout: float,
        mch_cert: str | None = None,
        mch_key: str | None = None,
    ) -> None:
        super().__init__(
            appid, api_key, mch_id, mch_cert=mch_cert, mch_key=mch_key, timeout=timeout
        )
        self.API_BASE_URL = api_base_url
        self._http = _TimeoutSession(timeout)

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        url_or_endpoint = _rehost(url_or_endpoint, _WECHAT_PAY_ROOTS, self.API_BASE_URL)
        return super()._request(method, url_or_endpoint, **kwargs)

    def _handle_result(self, res: requests.Response) -> dict[str, str]:
        # wechatpy returns the raw text when the XML does not parse, raises KeyError on an answer
        # without return_code, and never checks the answer's signature; all three are fixed here.
        try:
            data = parse_v2_xml(res.content)
        except MalformedXml as exc:
            raise WeChatPayException(
                None, return_msg=f"unreadable answer: {exc}", request=res.request, response=res
            ) from exc
        if data.get("return_code") != "SUCCESS":
            raise WeChatPayException(
                data.get("return_code"),
                data.get("result_code"),
                data.get("return_msg"),
                request=res.request,
                response=res,
            )
        unsigned = urlsplit(res.url).path.endswith(_UNSIGNED_ANSWERS)
        if not unsigned and not signature_matches(data, self.api_key):
            raise _SignatureMismatch()
        if data.get("result_code") != "SUCCESS":
            raise WeChatPayException(
                data.get("return_code"),
                data.get("result_code"),
                data.get("return_msg"),
                data.get("err_code"),
                data.get("err_code_des"),
                request=res.request,
                response=res,
            )
        return data


class TransferUncertain(UpstreamError):
    """WeChat may or may not have paid: retry with the same `partner_trade_no`, never a new one."""


def _transfer_outcome_unknown(cause: BaseException | None) -> bool:
    if isinstance(cause, requests.RequestException):
        return True  # a timeout may come after WeChat paid
    if isinstance(cause, WeChatPayException):
        # No readable answer, or WeChat's own "system error, retry with the same number".
        return cause.return_code is None or cause.errcode == "SYSTEMERROR"
    return False


@dataclass(frozen=True)
class WxSession:
    openid: str
    # The session key never leaves the server, so keep it out of reprs and logs too.
    session_key: str = field(repr=False)
    unionid: str | None = None


def _http_status(exc: WeChatException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, requests.Response) and response.status_code >= 400:
        return f"HTTP {response.status_code}"
    return None


def _describe(exc: WeChatException) -> str:
    if exc.errcode is None:
        return _http_status(exc) or "no answer"
    return f"errcode {exc.errcode}: {exc.errmsg}"


def _describe_pay(exc: WeChatPayException) -> str:
    if exc.errcode:
        return f"{exc.errcode}: {exc.errmsg}"
    if exc.return_code is None:
        return exc.return_msg or _http_status(exc) or "no answer"
    return f"return_code {exc.return_code}: {exc.return_msg}"


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


class WeChatGateway:
    """The only door to WeChat: login, unified order, JSAPI pay parameters, order query, refunds,
    transfers, codes and subscribe messages."""

    def __init__(
        self, credentials: WeChatCredentials, *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self.credentials = credentials
        self._client = _RoutedClient(
            credentials.app_id, credentials.app_secret, credentials.api_base_url, timeout
        )
        self._pay = _RoutedPay(
            credentials.app_id,
            credentials.api_key,
            credentials.mch_id,
            credentials.pay_api_base_url,
            timeout,
            mch_cert=credentials.mch_cert_path,
            mch_key=credentials.mch_key_path,
        )

    async def _call(self, what: str, host: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except WeChatPayException as exc:
            raise UpstreamError(f"WeChat Pay {what} failed: {_describe_pay(exc)}") from exc
        except _SignatureMismatch:
            raise UpstreamError(
                f"WeChat Pay {what} answered with a bad signature (wrong API key?)"
            ) from None
        except WeChatException as exc:
            raise UpstreamError(f"WeChat {what} failed: {_describe(exc)}") from exc
        except requests.RequestException as exc:
            # The exception text carries the full URL, and the token and login URLs carry the app
            # secret, so neither the text nor the chained exception goes further.
            raise UpstreamError(
                f"WeChat {what} unreachable at {urlsplit(host).netloc}: {type(exc).__name__}"
            ) from None

    async def _client_call(self, what: str, fn: Callable[[], T]) -> T:
        def with_one_token_retry() -> T:
            try:
                return fn()
            except WeChatClientException as exc:
                if exc.errcode not in _STALE_TOKEN_ERRORS:
                    raise
                self._client.forget_access_token()
                return fn()

        return await self._call(what, self.credentials.api_base_url, with_one_token_retry)

    async def code_to_session(self, code: str) -> WxSession:
        """The user's openid for a `wx.login` code; BadInput when WeChat rejects the code."""
        if not code or not code.strip():
            raise BadInput("invalid login code", field="code")
        try:
            result: Any = await self._client_call(
                "login (jscode2session)", lambda: self._client.wxa.code_to_session(code)
            )
        except UpstreamError as exc:
            cause = exc.__cause__
            if isinstance(cause, WeChatException) and cause.errcode in _INVALID_LOGIN_CODE_ERRORS:
                raise BadInput("invalid login code", field="code") from None
            raise
        if not isinstance(result, dict) or not result.get("openid"):
            raise UpstreamError("WeChat login (jscode2session) answered without an openid")
        return WxSession(
            openid=str(result["openid"]),
            session_key=str(result.get("session_key") or ""),
            unionid=result.get("unionid") or None,
        )

    async def unified_order(
        self,
        *,
        out_trade_no: str,
        total_fee: int,
        body: str,
        openid: str,
        client_ip: str = "127.0.0.1",
    ) -> str:
        """Place a JSAPI order with WeChat Pay and return its prepay_id."""
        if not _OUT_TRADE_NO.fullmatch(out_trade_no):
            raise ValueError(f"out_trade_no {out_trade_no!r} is not a WeChat merchant order number")
        if isinstance(total_fee, bool) or not isinstance(total_fee, int) or total_fee <= 0:
            raise ValueError("total_fee is a positive integer number of fen")
        # WeChat refuses a body over 128 bytes, and product names can be longer.
        body = _truncate_utf8(body, _MAX_BODY_BYTES) or out_trade_no
        result = await self._call(
            "unified order",
            self.credentials.pay_api_base_url,
            lambda: self._pay.order.create(
                trade_type="JSAPI",
                body=body,
                total_fee=total_fee,
                notify_url=self.credentials.notify_url,
                client_ip=client_ip,
                user_id=openid,
                out_trade_no=out_trade_no,
            ),
        )
        prepay_id = result.get("prepay_id")
        if not prepay_id:
            raise UpstreamError("WeChat Pay unified order answered without a prepay_id")
        return prepay_id

    def pay_params(self, prepay_id: str) -> dict[str, str]:
        """What `wx.requestPayment` takes, signed with the API key (no network involved)."""
        params: dict[str, str] = self._pay.jsapi.get_jsapi_params(prepay_id)
        return params

    async def refund(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        total_fee: int,
        refund_fee: int,
        reason: str | None,
    ) -> dict[str, str]:
        """Ask WeChat Pay to refund; the same `out_refund_no` refunds once however often asked."""
        result = await self._call(
            "refund",
            self.credentials.pay_api_base_url,
            lambda: self._pay.refund.apply(
                total_fee=total_fee,
                refund_fee=refund_fee,
                out_refund_no=out_refund_no,
                out_trade_no=out_trade_no,
                refund_desc=reason,
                # The refund's outcome comes back to us, next to the payment notifications.
                notify_url=self.credentials.notify_url.removesuffix("notify") + "refund-notify",
            ),
        )
        return dict(result)

    async def transfer(
        self,
        *,
        partner_trade_no: str,
        openid: str,
        amount_fen: int,
        description: str,
        check_name: str = "NO_CHECK",
        real_name: str | None = None,
        client_ip: str = "127.0.0.1",
    ) -> dict[str, str]:
        """Pay `amount_fen` to the user's change (企业付款到零钱); answers `payment_no`,
        `payment_time`, ...

        WeChat pays a `partner_trade_no` once however often asked. TransferUncertain means the
        outcome is unknown (retry with the same number); any other UpstreamError is a refusal.
        """
        if not _PARTNER_TRADE_NO.fullmatch(partner_trade_no):
            raise ValueError(f"partner_trade_no {partner_trade_no!r} is not 1-32 letters or digits")
        if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
            raise ValueError("amount_fen is a positive integer number of fen")
        if not openid:
            raise ValueError("openid is required")
        if not description.strip():
            raise ValueError("description is required")
        if check_name not in _TRANSFER_CHECKS:
            raise ValueError(f"check_name is one of {sorted(_TRANSFER_CHECKS)}")
        if check_name == "FORCE_CHECK" and not real_name:
            raise ValueError("FORCE_CHECK needs the payee's real_name")
        try:
            result = await self._call(
                "transfer",
                self.credentials.pay_api_base_url,
                # client_ip is given: wechatpy would otherwise look up WeChat's host to guess it.
                lambda: self._pay.transfer.transfer(
                    user_id=openid,
                    amount=amount_fen,
                    desc=description,
                    client_ip=client_ip,
                    check_name=check_name,
                    real_name=real_name,
                    out_trade_no=partner_trade_no,
                ),
            )
        except UpstreamError as exc:
            # __context__, not __cause__: network errors are re-raised "from None" to hide URLs.
            if _transfer_outcome_unknown(exc.__context__):
                raise TransferUncertain(exc.message) from exc.__cause__
            raise
        answer = dict(result)
        if (
            answer.get("mch_appid") != self.credentials.app_id
            or answer.get("mchid") != self.credentials.mch_id
            or answer.get("partner_trade_no") != partner_trade_no
            or not answer.get("payment_no")
        ):
            raise TransferUncertain(
                "WeChat Pay transfer answered SUCCESS for another merchant or order, "
                "or without a payment_no"
            )
        return answer

    async def order_query(self, out_trade_no: str) -> dict[str, str]:
        """WeChat Pay's view of an order: `trade_state`, and when paid `transaction_id`,
        `total_fee`, `time_end` ...; every value is the string WeChat sent."""
        result = await self._call(
            "order query",
            self.credentials.pay_api_base_url,
            lambda: self._pay.order.query(out_trade_no=out_trade_no),
        )
        return dict(result)

    async def wxa_code_unlimited(
        self, scene: str, *, page: str | None = None, width: int = 430
    ) -> bytes:
        """A mini-program code image (PNG bytes) for `scene` (at most 32 characters)."""
        result: Any = await self._client_call(
            "mini-program code (getwxacodeunlimit)",
            lambda: self._client.wxa.get_wxa_code_unlimited(scene, width=width, page=page),
        )
        # wechatpy hands back the raw response when the answer is not JSON, i.e. the image.
        if isinstance(result, requests.Response):
            return result.content
        raise UpstreamError("WeChat getwxacodeunlimit answered without an image")

    async def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: dict[str, dict[str, str]],
        *,
        page: str | None = None,
    ) -> None:
        """Send a subscribe message; `data` is `{"thing1": {"value": "..."}, ...}`."""
        await self._client_call(
            "subscribe message",
            lambda: self._client.wxa.send_subscribe_message(openid, template_id, data, page=page),
        )
