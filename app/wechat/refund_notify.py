"""WeChat Pay v2 refund notifications: the outer XML, the encrypted `req_info`, the fields."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.wechat.credentials import WeChatCredentials
from app.wechat.pay_notify import WECHAT_TZ, InvalidNotification, MalformedXml, parse_v2_xml

REFUND_STATUSES = frozenset({"SUCCESS", "CHANGE", "REFUNDCLOSE"})
_FEE = re.compile(r"[0-9]{1,12}")
_AES_BLOCK_BYTES = 16
# The decrypted req_info is `<root>…</root>`; the shared parser wants `<xml>…</xml>`.
_ROOT = re.compile(r"\A\s*<root>(?P<inner>.*)</root>\s*\Z", re.DOTALL)

REQUIRED_REFUND_FIELDS = (
    "out_trade_no",
    "out_refund_no",
    "refund_id",
    "transaction_id",
    "total_fee",
    "refund_fee",
    "settlement_refund_fee",
    "refund_status",
)


@dataclass(frozen=True)
class RefundNotice:
    out_trade_no: str
    out_refund_no: str
    refund_id: str
    transaction_id: str
    total_fee: int
    refund_fee: int
    settlement_refund_fee: int
    refund_status: str
    success_time: datetime | None
    raw: dict[str, str] = field(repr=False, compare=False)


def refund_key(api_key: str) -> bytes:
    """The AES-256 key of `req_info`: the lowercase hex MD5 of the v2 API key, as ASCII."""
    return hashlib.md5(api_key.encode("utf-8")).hexdigest().encode("ascii")


def decrypt_req_info(req_info: str, api_key: str) -> str:
    """`req_info` decrypted (base64, AES-256-ECB, PKCS#7); InvalidNotification when it does not."""
    try:
        ciphertext = base64.b64decode(req_info.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidNotification("req_info is not base64") from None
    if not ciphertext or len(ciphertext) % _AES_BLOCK_BYTES:
        raise InvalidNotification("req_info does not decrypt: not whole AES blocks")
    # ECB is WeChat's choice, not ours: the notification has no other protection.
    decryptor = Cipher(algorithms.AES(refund_key(api_key)), modes.ECB()).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        plaintext = unpadder.update(padded) + unpadder.finalize()
        return plaintext.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise InvalidNotification("req_info does not decrypt with our API key") from None


def _parse_req_info(text: str) -> dict[str, str]:
    match = _ROOT.match(text)
    if match is None:
        raise InvalidNotification("req_info does not decrypt to a <root> document")
    try:
        return parse_v2_xml("<xml>" + match["inner"] + "</xml>")
    except MalformedXml as exc:
        raise InvalidNotification(f"req_info does not decrypt to XML: {exc}") from exc


def _fee(fields: dict[str, str], name: str) -> int:
    value = fields[name]
    if not _FEE.fullmatch(value):
        raise InvalidNotification(f"{name} is not a non-negative integer: {value!r}")
    return int(value)


def _success_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        naive = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise InvalidNotification(f"success_time is not yyyy-MM-dd HH:mm:ss: {value!r}") from None
    return naive.replace(tzinfo=WECHAT_TZ)


def parse_v2_refund_notification(body: bytes, creds: WeChatCredentials) -> RefundNotice:
    """Parse and authenticate a v2 refund notification; matching it to our refund is the caller's.

    There is no `sign` on refund notifications: a `req_info` that decrypts with our API key is
    the proof it came from WeChat. The caller still checks that `out_refund_no` is one of ours
    and that `refund_fee` is what we asked for.
    """
    try:
        outer = parse_v2_xml(body)
    except MalformedXml as exc:
        raise InvalidNotification(f"malformed XML: {exc}") from exc
    if outer.get("return_code") != "SUCCESS":
        raise InvalidNotification(f"return_code is {outer.get('return_code')!r}, not SUCCESS")
    if outer.get("appid") != creds.app_id:
        raise InvalidNotification(f"appid {outer.get('appid')!r} is not ours")
    if outer.get("mch_id") != creds.mch_id:
        raise InvalidNotification(f"mch_id {outer.get('mch_id')!r} is not ours")
    req_info = outer.get("req_info")
    if not req_info:
        raise InvalidNotification("missing field(s): req_info")
    fields = _parse_req_info(decrypt_req_info(req_info, creds.api_key))
    missing = [name for name in REQUIRED_REFUND_FIELDS if not fields.get(name)]
    if missing:
        raise InvalidNotification(f"missing field(s) in req_info: {', '.join(missing)}")
    status = fields["refund_status"]
    if status not in REFUND_STATUSES:
        raise InvalidNotification(f"unknown refund_status {status!r}")
    return RefundNotice(
        out_trade_no=fields["out_trade_no"],
        out_refund_no=fields["out_refund_no"],
        refund_id=fields["refund_id"],
        transaction_id=fields["transaction_id"],
        total_fee=_fee(fields, "total_fee"),
        refund_fee=_fee(fields, "refund_fee"),
        settlement_refund_fee=_fee(fields, "settlement_refund_fee"),
        refund_status=status,
        success_time=_success_time(fields.get("success_time", "")),
        raw=fields,
    )
