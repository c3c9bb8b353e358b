"""WeChat Pay v2 XML: a safe parser, the payment notification check and the reply WeChat expects."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from xml.parsers import expat
from xml.parsers.expat import ExpatError
from zoneinfo import ZoneInfo

from app.wechat.credentials import WeChatCredentials

WECHAT_TZ = ZoneInfo("Asia/Shanghai")
# Real notifications are about 1 KB; anything far larger is not WeChat.
MAX_XML_BYTES = 64 * 1024

# Any markup declaration (<!DOCTYPE, <!ENTITY, ...) other than CDATA: WeChat never sends one, and
# refusing it outright closes entity expansion and external-entity tricks before expat sees them.
_DECLARATION = re.compile(r"<!(?!\[CDATA\[)")
_FEE = re.compile(r"[0-9]{1,12}")
_TIME_END = re.compile(r"[0-9]{14}")

# The shape WeChat sends: `<xml>`, then each field as `<name>` holding one CDATA section or plain
# text. A body in exactly this shape is read by two regular expressions, in a third of the time
# of expat with a Python call per element and text; any other body goes to expat, which decides.
# A value here leaves out every character on which the two readings could differ: markup, "]"
# (of "]]>"), "\r" (which XML normalizes), and the characters XML refuses.
_VALUE = r"[^<>&\]\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*"
_FIELD = rf"[ \t\r\n]*<([A-Za-z_][A-Za-z0-9_]*)>(?:<!\[CDATA\[({_VALUE})\]\]>|({_VALUE}))</\1>"
_WECHAT_SHAPED = re.compile(rf"<xml>(?:{_FIELD})+[ \t\r\n]*</xml>[ \t\r\n]*")
_WECHAT_FIELD = re.compile(_FIELD)

REQUIRED_FIELDS = (
    "appid",
    "mch_id",
    "openid",
    "out_trade_no",
    "transaction_id",
    "total_fee",
    "cash_fee",
    "time_end",
)


class MalformedXml(ValueError):
    """The body is not the flat `<xml>` document WeChat Pay v2 speaks."""


class InvalidNotification(Exception):
    """A payment notification we must not act on; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PaymentNotice:
    out_trade_no: str
    transaction_id: str
    total_fee: int
    cash_fee: int
    appid: str
    mch_id: str
    openid: str
    time_end: datetime
    raw: dict[str, str] = field(repr=False, compare=False)


def parse_v2_xml(body: bytes | str) -> dict[str, str]:
    """The fields of a v2 `<xml>` document, every value a string ("" for an empty element)."""
    if isinstance(body, bytes):
        if len(body) > MAX_XML_BYTES:
            raise MalformedXml("body too large")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedXml("body is not UTF-8") from exc
    else:
        text = body
        if len(text) > MAX_XML_BYTES:
            raise MalformedXml("body too large")
    if (fields := _wechat_shaped_fields(text)) is not None:
        return fields
    if _DECLARATION.search(text):
        raise MalformedXml("DOCTYPE and other declarations are not accepted")
    return _FlatXml().parse(body if isinstance(body, bytes) else text.encode("utf-8"))


def _wechat_shaped_fields(text: str) -> dict[str, str] | None:
    """The fields of a body in WeChat's exact shape, as expat would read them; None otherwise
    (a repeated field included: expat refuses it)."""
    if not _WECHAT_SHAPED.fullmatch(text):
        return None
    found = _WECHAT_FIELD.findall(text)
    fields = {name: cdata or plain for name, cdata, plain in found}
    return fields if len(fields) == len(found) else None


class _FlatXml:
    """expat with just enough handlers for WeChat's one level of plain fields under `<xml>`.

    Anything else (attributes, nesting, a repeated field, text between fields) is refused as it
    is met. Whitespace inside a value is kept: it is part of the signed value.
    """

    __slots__ = ("chunks", "depth", "fields", "name")

    def __init__(self) -> None:
        self.depth = 0
        self.fields: dict[str, str] = {}
        self.name = ""
        self.chunks: list[str] = []

    def parse(self, data: bytes) -> dict[str, str]:
        # The encoding is forced: the body was checked as UTF-8, whatever its declaration says.
        parser = expat.ParserCreate("utf-8")
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        try:
            parser.Parse(data, True)
        except (ExpatError, ValueError) as exc:
            raise MalformedXml(f"not well-formed XML ({exc})") from exc
        if not self.fields:
            raise MalformedXml("the root element must be a non-empty <xml>")
        return self.fields

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 1:
            if name != "xml":
                raise MalformedXml("the root element must be a non-empty <xml>")
            if attributes:
                raise MalformedXml(f"unexpected attribute(s) {sorted(attributes)!r} on <xml>")
        elif self.depth == 2:
            if attributes or name in self.fields:
                raise MalformedXml(f"field {name!r} is not a single plain value")
            self.name = name
            self.chunks = []
        else:
            # A nested element: no v2 field has one.
            raise MalformedXml(f"field {self.name!r} is not a single plain value")

    def _end(self, name: str) -> None:
        if self.depth == 2:
            self.fields[self.name] = "".join(self.chunks)
        self.depth -= 1

    def _text(self, data: str) -> None:
        if self.depth == 2:
            self.chunks.append(data)
        elif data.strip():
            raise MalformedXml("unexpected text between the fields of <xml>")


def v2_signature(fields: Mapping[str, str], api_key: str) -> str:
    """WeChat Pay v2's MD5 signature: the non-empty fields but `sign`, sorted by name, as
    `k=v&...&key=<API key>` (what wechatpy's `calculate_signature` computes, without its
    per-field encoding and debug logging, which cost more than the hash)."""
    parts = [f"{key}={value}" for key, value in sorted(fields.items()) if value and key != "sign"]
    parts.append(f"key={api_key}")
    return hashlib.md5("&".join(parts).encode("utf-8")).hexdigest().upper()


def signature_matches(fields: dict[str, str], api_key: str) -> bool:
    """Whether `fields["sign"]` is the v2 MD5 signature of the other fields (constant time)."""
    given = fields.get("sign", "")
    expected = v2_signature(fields, api_key)
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def _parse_fee(fields: dict[str, str], name: str) -> int:
    value = fields[name]
    if not _FEE.fullmatch(value):
        raise InvalidNotification(f"{name} is not a non-negative integer: {value!r}")
    return int(value)


def parse_time_end(value: str) -> datetime:
    if not _TIME_END.fullmatch(value):
        raise InvalidNotification(f"time_end is not yyyyMMddHHmmss: {value!r}")
    try:
        # Fourteen digits split at fixed places (what strptime does with them, ten times faster);
        # datetime refuses a month, day or time that does not exist.
        naive = datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
        )
    except ValueError as exc:
        raise InvalidNotification(f"time_end is not a valid time: {value!r}") from exc
    return naive.replace(tzinfo=WECHAT_TZ)


def parse_v2_payment_notification(body: bytes, creds: WeChatCredentials) -> PaymentNotice:
    """Parse and authenticate a v2 payment notification; the order checks are the caller's."""
    try:
        fields = parse_v2_xml(body)
    except MalformedXml as exc:
        raise InvalidNotification(f"malformed XML: {exc}") from exc
    if not fields.get("sign"):
        raise InvalidNotification("missing signature")
    sign_type = fields.get("sign_type") or "MD5"
    if sign_type != "MD5":
        # We ask for MD5 at unified order, so WeChat signs the notification the same way.
        raise InvalidNotification(f"unsupported sign_type {sign_type!r}")
    if not signature_matches(fields, creds.api_key):
        raise InvalidNotification("signature mismatch")
    if fields.get("return_code") != "SUCCESS":
        raise InvalidNotification(f"return_code is {fields.get('return_code')!r}, not SUCCESS")
    if fields.get("result_code") != "SUCCESS":
        detail = fields.get("err_code") or fields.get("err_code_des") or ""
        raise InvalidNotification(
            f"result_code is {fields.get('result_code')!r}, not SUCCESS {detail}".rstrip()
        )
    missing = [name for name in REQUIRED_FIELDS if not fields.get(name)]
    if missing:
        raise InvalidNotification(f"missing field(s): {', '.join(missing)}")
    if fields["appid"] != creds.app_id:
        raise InvalidNotification(f"appid {fields['appid']!r} is not ours")
    if fields["mch_id"] != creds.mch_id:
        raise InvalidNotification(f"mch_id {fields['mch_id']!r} is not ours")
    return PaymentNotice(
        out_trade_no=fields["out_trade_no"],
        transaction_id=fields["transaction_id"],
        total_fee=_parse_fee(fields, "total_fee"),
        cash_fee=_parse_fee(fields, "cash_fee"),
        appid=fields["appid"],
        mch_id=fields["mch_id"],
        openid=fields["openid"],
        time_end=parse_time_end(fields["time_end"]),
        raw=fields,
    )


def _cdata(text: str) -> str:
    # "]]>" would end the section early; split it across two sections instead.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def reply_xml(ok: bool, message: str = "OK") -> str:
    """The body WeChat expects in answer to a notification: SUCCESS stops its retries."""
    code = "SUCCESS" if ok else "FAIL"
    return (
        f"<xml><return_code>{_cdata(code)}</return_code>"
        f"<return_msg>{_cdata(message)}</return_msg></xml>"
    )
