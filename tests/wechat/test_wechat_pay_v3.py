"""WeChat Pay v3 payment notifications: credentials, parser, endpoint and the fake sender."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from starlette.applications import Starlette
from starlette.routing import Route

from app.config import Settings
from app.wechat.credentials import (
    FAKE_APIV3_KEY,
    FAKE_PAY_PUBLIC_KEY_ID,
    WeChatCredentials,
    resolve_credentials,
)
from app.wechat.http import v3_notify_endpoint
from app.wechat.pay_notify import InvalidNotification, PaymentNotice
from app.wechat.pay_v3 import parse_v3_payment_notification, v3_fail_body
from miniprogram_mock.fake_wechat import create_fake_wechat
from miniprogram_mock.signing import (
    build_v3_payment_notification,
    encrypt_v3_resource,
    sign_v3,
    signed_xml,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 1, 1, 12, 30, 45, tzinfo=SHANGHAI)
STAMP = int(NOW.timestamp())

CREDS = resolve_credentials(Settings(app_env="test", wechat_fake=True), "http://127.0.0.1:9/")

REAL = {
    "wechat_app_id": "wx1234567890abcdef",
    "wechat_app_secret": "real-secret",
    "wechat_mch_id": "1600000000",
    "wechat_pay_api_key": "K" * 32,
}


def notification(**overrides: Any) -> tuple[dict[str, str], bytes]:
    arguments: dict[str, Any] = {
        "out_trade_no": "R20240101000001",
        "transaction_id": "4200000001202401010000000001",
        "total_fee": 1990,
        "openid": "mock-openid-alice",
        "success_time": NOW,
        "timestamp": STAMP,
    }
    arguments.update(overrides)
    return build_v3_payment_notification(CREDS, **arguments)


def transaction(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "appid": CREDS.app_id,
        "mchid": CREDS.mch_id,
        "out_trade_no": "R1",
        "transaction_id": "T1",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "success_time": "2024-01-01T12:30:45+08:00",
        "payer": {"openid": "o"},
        "amount": {"total": 1990, "payer_total": 1990, "currency": "CNY"},
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def signed_body(body: bytes, *, timestamp: int = STAMP) -> tuple[dict[str, str], bytes]:
    """Any body, signed as WeChat would sign it: for shapes the builder never makes."""
    assert CREDS.fake_pay_private_key_pem is not None
    nonce = "n" * 32
    headers = {
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": sign_v3(CREDS.fake_pay_private_key_pem, str(timestamp), nonce, body),
        "Wechatpay-Serial": FAKE_PAY_PUBLIC_KEY_ID,
    }
    return headers, body


def envelope(plaintext: bytes, **overrides: Any) -> bytes:
    assert CREDS.apiv3_key is not None
    fields: dict[str, Any] = {
        "id": "EV-1",
        "event_type": "TRANSACTION.SUCCESS",
        "resource_type": "encrypt-resource",
        "resource": encrypt_v3_resource(CREDS.apiv3_key, plaintext),
    }
    fields.update(overrides)
    return json.dumps(fields).encode()


def with_transaction(**overrides: Any) -> tuple[dict[str, str], bytes]:
    return signed_body(envelope(json.dumps(transaction(**overrides)).encode()))


def refused(
    headers: dict[str, str], body: bytes, creds: WeChatCredentials = CREDS, now: datetime = NOW
) -> str:
    with pytest.raises(InvalidNotification) as caught:
        parse_v3_payment_notification(headers, body, creds, now=now)
    return caught.value.reason


# ---------------------------------------------------------------- credentials


def test_the_fake_makes_up_the_v3_side_once_per_process() -> None:
    again = resolve_credentials(Settings(app_env="test", wechat_fake=True), "http://h:1/")
    assert CREDS.apiv3_key == FAKE_APIV3_KEY
    assert len(FAKE_APIV3_KEY) == 32
    assert CREDS.pay_public_key_id == FAKE_PAY_PUBLIC_KEY_ID
    assert CREDS.fake_pay_private_key_pem is not None
    assert CREDS.pay_public_key_pem is not None
    assert again.fake_pay_private_key_pem is CREDS.fake_pay_private_key_pem
    private_key = serialization.load_pem_private_key(CREDS.fake_pay_private_key_pem, None)
    assert private_key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == (CREDS.pay_public_key_pem)
    assert private_key.key_size == 2048  # type: ignore[union-attr]
    text = repr(CREDS)
    assert FAKE_APIV3_KEY not in text
    assert "PRIVATE KEY" not in text


def test_the_fake_keeps_a_configured_apiv3_key() -> None:
    creds = resolve_credentials(
        Settings(app_env="test", wechat_fake=True, wechat_pay_apiv3_key="A" * 32), "http://h/"
    )
    assert creds.apiv3_key == "A" * 32
    assert creds.fake_pay_private_key_pem is not None


def write_public_key(path: Path) -> bytes:
    key = serialization.load_pem_private_key(CREDS.fake_pay_private_key_pem or b"", None)
    pem = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.write_bytes(pem)
    return pem


def test_real_v3_settings_are_read_once(tmp_path: Path) -> None:
    key_file = tmp_path / "pub_key.pem"
    pem = write_public_key(key_file)
    settings = Settings(
        app_env="test",
        wechat_fake=False,
        wechat_pay_apiv3_key="V" * 32,
        wechat_pay_public_key_path=str(key_file),
        wechat_pay_public_key_id="PUB_KEY_ID_0114",
        **REAL,
    )
    creds = resolve_credentials(settings, "http://h/")
    key_file.unlink()  # read at resolve time, never again
    assert creds.apiv3_key == "V" * 32
    assert creds.pay_public_key_pem == pem
    assert creds.pay_public_key_id == "PUB_KEY_ID_0114"
    assert creds.fake_pay_private_key_pem is None
    assert "V" * 32 not in repr(creds)


def test_real_without_v3_settings_has_no_v3_side() -> None:
    creds = resolve_credentials(Settings(app_env="test", wechat_fake=False, **REAL), "http://h/")
    assert (creds.apiv3_key, creds.pay_public_key_pem, creds.pay_public_key_id) == (
        None,
        None,
        None,
    )
    headers, body = notification()
    assert refused(headers, body, creds) == "WeChat Pay v3 is not configured"


def test_existing_callers_need_no_v3_fields() -> None:
    creds = WeChatCredentials(
        app_id="wx",
        app_secret="s",
        mch_id="1",
        api_key="k" * 32,
        api_base_url="http://h/wx/",
        pay_api_base_url="http://h/pay/",
        notify_url="http://h/wechat/pay/notify",
    )
    assert creds.apiv3_key is None
    assert creds.fake_pay_private_key_pem is None


@pytest.mark.parametrize(
    ("v3", "message"),
    [
        ({"wechat_pay_apiv3_key": "V" * 32}, "together"),
        ({"wechat_pay_public_key_id": "PUB_KEY_ID_1"}, "go together"),
        ({"wechat_pay_apiv3_key": "short", "public_key": True}, "32 bytes"),
        ({"wechat_pay_apiv3_key": "V" * 32, "public_key": "missing"}, "cannot be read"),
        ({"wechat_pay_apiv3_key": "V" * 32, "public_key": "garbage"}, "not a PEM"),
        ({"wechat_pay_apiv3_key": "V" * 32, "public_key": "ec"}, "not an RSA"),
    ],
)
def test_bad_real_v3_settings_are_refused(tmp_path: Path, v3: dict[str, Any], message: str) -> None:
    v3 = dict(v3)
    public_key = v3.pop("public_key", None)
    if public_key is not None:
        key_file = tmp_path / "pub_key.pem"
        if public_key is True:
            write_public_key(key_file)
        elif public_key == "garbage":
            key_file.write_bytes(b"not a key")
        elif public_key == "ec":
            ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
            key_file.write_bytes(
                ec_key.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        v3 |= {"wechat_pay_public_key_path": str(key_file), "wechat_pay_public_key_id": "P1"}
    settings = Settings(app_env="test", wechat_fake=False, **REAL, **v3)
    with pytest.raises(ValueError, match=message):
        resolve_credentials(settings, "http://h/")


# ---------------------------------------------------------------- the parser


def test_valid_notification_parses() -> None:
    headers, body = notification(payer_total=1890)
    notice = parse_v3_payment_notification(headers, body, CREDS, now=NOW)
    assert notice.out_trade_no == "R20240101000001"
    assert notice.transaction_id == "4200000001202401010000000001"
    assert notice.total_fee == 1990
    assert notice.cash_fee == 1890
    assert notice.appid == CREDS.app_id
    assert notice.mch_id == CREDS.mch_id
    assert notice.openid == "mock-openid-alice"
    assert notice.time_end == NOW
    assert notice.time_end.utcoffset() == timedelta(hours=8)
    assert notice.raw["amount.total"] == "1990"
    assert notice.raw["payer.openid"] == "mock-openid-alice"
    assert notice.raw["trade_state"] == "SUCCESS"


def test_header_names_are_case_insensitive() -> None:
    headers, body = notification()
    lowered = {name.lower(): value for name, value in headers.items()}
    assert parse_v3_payment_notification(lowered, body, CREDS, now=NOW).total_fee == 1990


def test_cash_fee_defaults_to_the_total() -> None:
    amount = {"total": 500, "currency": "CNY"}
    headers, body = with_transaction(amount=amount)
    notice = parse_v3_payment_notification(headers, body, CREDS, now=NOW)
    assert (notice.total_fee, notice.cash_fee) == (500, 500)


def test_success_time_in_utc_is_the_same_instant() -> None:
    headers, body = with_transaction(success_time="2024-01-01T04:30:45Z")
    assert parse_v3_payment_notification(headers, body, CREDS, now=NOW).time_end == NOW


@pytest.mark.parametrize("skew", [timedelta(minutes=-4, seconds=-59), timedelta(minutes=5)])
def test_timestamp_inside_five_minutes_is_accepted(skew: timedelta) -> None:
    headers, body = notification()
    assert parse_v3_payment_notification(headers, body, CREDS, now=NOW + skew).total_fee == 1990


def test_bad_signature_is_refused() -> None:
    assert refused(*notification(wrong_signature=True)) == "bad signature"


def test_body_changed_after_signing_is_refused() -> None:
    headers, body = notification()
    assert refused(headers, body.replace(b'"id": "EV-', b'"id": "EX-')) == "bad signature"


def test_signature_that_is_not_base64_is_refused() -> None:
    headers, body = notification()
    headers["Wechatpay-Signature"] = "not base64!"
    assert refused(headers, body).startswith("bad signature")


def test_wechat_signature_probe_is_refused() -> None:
    # WeChat sometimes sends a deliberately wrong signature to check merchants verify them.
    headers, body = notification()
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    assert refused(headers, body).startswith("bad signature")


def test_signature_by_another_platform_key_is_refused() -> None:
    headers, body = notification()
    other = replace(
        CREDS,
        pay_public_key_pem=serialization.load_pem_private_key(
            CREDS.fake_pay_private_key_pem or b"", None
        )
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
    )
    # Same key in another PEM layout verifies; a different key does not.
    assert parse_v3_payment_notification(headers, body, other, now=NOW).total_fee == 1990
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = dict(headers)
    forged["Wechatpay-Signature"] = base64.b64encode(
        stranger.sign(
            f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode()
            + body
            + b"\n",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    ).decode()
    assert refused(forged, body) == "bad signature"


def test_wrong_serial_is_refused() -> None:
    assert "unknown serial" in refused(*notification(serial="PUB_KEY_ID_SOMEONE_ELSE"))


@pytest.mark.parametrize(
    "header",
    ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"],
)
def test_missing_header_is_refused(header: str) -> None:
    headers, body = notification()
    del headers[header]
    assert refused(headers, body) == f"missing header(s): {header.lower()}"


@pytest.mark.parametrize("minutes", [-6, 6])
def test_stale_timestamp_is_refused(minutes: int) -> None:
    headers, body = notification(timestamp=STAMP + minutes * 60)
    assert refused(headers, body).startswith("stale timestamp")


@pytest.mark.parametrize(
    "stamp", ["soon", "1704083445.0", "-1704083445", "1e9", "\uff19\uff19", "1" * 13]
)
def test_signed_timestamp_that_is_not_unix_seconds_is_refused(stamp: str) -> None:
    assert CREDS.fake_pay_private_key_pem is not None
    headers, body = notification()
    headers["Wechatpay-Timestamp"] = stamp
    headers["Wechatpay-Signature"] = sign_v3(
        CREDS.fake_pay_private_key_pem, stamp, headers["Wechatpay-Nonce"], body
    )
    assert "Wechatpay-Timestamp" in refused(headers, body)


def test_naive_now_is_a_programming_error() -> None:
    headers, body = notification()
    with pytest.raises(ValueError):
        parse_v3_payment_notification(headers, body, CREDS, now=NOW.replace(tzinfo=None))


def test_tampered_ciphertext_is_refused() -> None:
    assert refused(*notification(tamper=True)).startswith("tampered ciphertext")


def test_other_apiv3_key_does_not_decrypt() -> None:
    headers, body = notification()
    reason = refused(headers, body, replace(CREDS, apiv3_key="Z" * 32))
    assert reason.startswith("tampered ciphertext")


def test_associated_data_is_authenticated() -> None:
    assert CREDS.apiv3_key is not None
    resource = encrypt_v3_resource(CREDS.apiv3_key, json.dumps(transaction()).encode())
    resource["associated_data"] = "refund"
    headers, body = signed_body(envelope(b"", resource=resource))
    assert refused(headers, body).startswith("tampered ciphertext")


def test_other_appid_is_refused() -> None:
    assert "appid" in refused(*notification(appid="wxsomebodyelse00001"))


def test_other_mchid_is_refused() -> None:
    assert "mchid" in refused(*notification(mchid="1999999999"))


@pytest.mark.parametrize("state", ["NOTPAY", "CLOSED", "REFUND", "PAYERROR"])
def test_trade_state_other_than_success_is_refused(state: str) -> None:
    assert "trade_state" in refused(*notification(trade_state=state))


def test_other_event_type_is_refused() -> None:
    assert "event_type" in refused(*notification(event_type="REFUND.SUCCESS"))


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b"[1, 2]", b'"x"'])
def test_malformed_json_is_refused(body: bytes) -> None:
    reason = refused(*signed_body(body))
    assert "JSON" in reason


def test_resource_that_is_not_json_is_refused() -> None:
    assert refused(*signed_body(envelope(b"<xml/>"))) == "malformed JSON in the resource"


def test_other_algorithm_is_refused() -> None:
    assert CREDS.apiv3_key is not None
    resource = encrypt_v3_resource(CREDS.apiv3_key, json.dumps(transaction()).encode())
    resource["algorithm"] = "AEAD_AES_128_GCM"
    assert "algorithm" in refused(*signed_body(envelope(b"", resource=resource)))


@pytest.mark.parametrize(
    "resource",
    [None, "x", {"algorithm": "AEAD_AES_256_GCM", "nonce": "n" * 12}],
)
def test_missing_resource_parts_are_refused(resource: Any) -> None:
    body = json.dumps({"event_type": "TRANSACTION.SUCCESS", "resource": resource}).encode()
    assert "resource" in refused(*signed_body(body))


def test_ciphertext_that_is_not_base64_is_refused() -> None:
    resource = {"algorithm": "AEAD_AES_256_GCM", "nonce": "n" * 12, "ciphertext": "%%%"}
    body = json.dumps({"event_type": "TRANSACTION.SUCCESS", "resource": resource}).encode()
    assert "base64" in refused(*signed_body(body))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"out_trade_no": None}, "out_trade_no"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"appid": None}, "appid"),
        ({"mchid": None}, "mchid"),
        ({"success_time": None}, "success_time"),
        ({"payer": None}, "payer"),
        ({"payer": {}}, "payer.openid"),
        ({"amount": None}, "amount"),
        ({"amount": {"payer_total": 1}}, "amount.total"),
        ({"amount": {"total": "1990"}}, "amount.total"),
        ({"amount": {"total": 19.9}}, "amount.total"),
        ({"amount": {"total": True}}, "amount.total"),
        ({"amount": {"total": -1}}, "amount.total"),
        ({"amount": {"total": 1990, "payer_total": "1"}}, "amount.payer_total"),
        ({"success_time": "2024-01-01T12:30:45"}, "success_time"),
        ({"success_time": "yesterday"}, "success_time"),
    ],
)
def test_missing_or_bad_transaction_fields_are_refused(
    overrides: dict[str, Any], field: str
) -> None:
    assert field in refused(*with_transaction(**overrides))


def test_oversized_body_is_refused() -> None:
    headers, body = signed_body(b" " * (64 * 1024 + 1))
    assert refused(headers, body) == "body too large"


def test_fail_body_is_the_json_wechat_expects() -> None:
    assert json.loads(v3_fail_body("金额不符")) == {"code": "FAIL", "message": "金额不符"}


# ---------------------------------------------------------------- the endpoint


class Recorder:
    """A stub `on_payment`: records each notice and answers as told."""

    def __init__(self, answer: tuple[bool, str] = (True, "")) -> None:
        self.answer = answer
        self.notices: list[PaymentNotice] = []
        self.fail = False

    async def __call__(self, notice: PaymentNotice) -> tuple[bool, str]:
        self.notices.append(notice)
        if self.fail:
            raise RuntimeError("database down")
        return self.answer


def v3_app(recorder: Recorder, **kwargs: Any) -> Starlette:
    endpoint = v3_notify_endpoint(CREDS, recorder, **kwargs)
    return Starlette(routes=[Route("/wechat/pay/notify/v3", endpoint, methods=["POST"])])


async def post_v3(app: Starlette, headers: dict[str, str], body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        return await client.post("/wechat/pay/notify/v3", content=body, headers=headers)


async def test_endpoint_answers_204_for_an_accepted_notice() -> None:
    recorder = Recorder()
    answer = await post_v3(v3_app(recorder, clock=lambda: NOW), *notification())
    assert answer.status_code == 204
    assert answer.content == b""
    [notice] = recorder.notices
    assert notice.out_trade_no == "R20240101000001"


async def test_endpoint_answers_fail_when_the_callback_refuses() -> None:
    recorder = Recorder((False, "amount mismatch"))
    answer = await post_v3(v3_app(recorder, clock=lambda: NOW), *notification())
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"code": "FAIL", "message": "amount mismatch"}
    assert len(recorder.notices) == 1


@pytest.mark.parametrize(
    "overrides",
    [{"wrong_signature": True}, {"tamper": True}, {"timestamp": STAMP - 360}, {"mchid": "1"}],
)
async def test_endpoint_refuses_invalid_notices_without_calling_back(
    overrides: dict[str, Any],
) -> None:
    recorder = Recorder()
    answer = await post_v3(v3_app(recorder, clock=lambda: NOW), *notification(**overrides))
    assert answer.status_code == 400
    assert answer.json()["code"] == "FAIL"
    assert answer.json()["message"]
    assert recorder.notices == []


async def test_endpoint_uses_the_real_clock_by_default() -> None:
    recorder = Recorder()
    assert (await post_v3(v3_app(recorder), *notification(timestamp=None))).status_code == 204
    stale = notification(timestamp=int(datetime.now(UTC).timestamp()) - 3600)
    assert (await post_v3(v3_app(recorder), *stale)).status_code == 400
    assert len(recorder.notices) == 1


async def test_endpoint_refuses_a_body_over_64_kb() -> None:
    recorder = Recorder()
    headers, body = signed_body(b" " * (64 * 1024 + 1))
    answer = await post_v3(v3_app(recorder, clock=lambda: NOW), headers, body)
    assert answer.status_code == 413
    assert answer.json() == {"code": "FAIL", "message": "body too large"}
    assert recorder.notices == []


async def test_endpoint_answers_500_when_the_callback_fails() -> None:
    recorder = Recorder()
    recorder.fail = True
    answer = await post_v3(v3_app(recorder, clock=lambda: NOW), *notification())
    assert answer.status_code == 500
    assert answer.json() == {"code": "FAIL", "message": "internal error"}


# ---------------------------------------------------------------- the fake's /control/pay-v3


@pytest.fixture
async def fake_v3() -> AsyncIterator[tuple[httpx.AsyncClient, Recorder]]:
    """The fake WeChat in-process, delivering notifications to our v3 endpoint in-process."""
    recorder = Recorder()
    product = v3_app(recorder)
    fake = create_fake_wechat(CREDS, notify_transport=httpx.ASGITransport(app=product))
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://wechat") as client:
        yield client, recorder


async def unified_order(client: httpx.AsyncClient, out_trade_no: str, total_fee: int) -> None:
    request = {
        "appid": CREDS.app_id,
        "mch_id": CREDS.mch_id,
        "body": "x",
        "out_trade_no": out_trade_no,
        "total_fee": total_fee,
        "notify_url": CREDS.notify_url,
        "trade_type": "JSAPI",
        "openid": "mock-openid-dora",
        "spbill_create_ip": "127.0.0.1",
    }
    answer = await client.post("/pay/pay/unifiedorder", content=signed_xml(request, CREDS.api_key))
    assert "<prepay_id>" in answer.text


async def test_control_pay_v3_posts_a_notice_our_endpoint_accepts(
    fake_v3: tuple[httpx.AsyncClient, Recorder],
) -> None:
    client, recorder = fake_v3
    await unified_order(client, "V3ORDER1", 4200)
    answer = await client.post("/control/pay-v3", json={"outTradeNo": "V3ORDER1"})
    assert answer.status_code == 200
    result = answer.json()
    assert (result["status"], result["body"]) == (204, "")
    [notice] = recorder.notices
    assert (notice.out_trade_no, notice.total_fee, notice.cash_fee) == ("V3ORDER1", 4200, 4200)
    assert notice.openid == "mock-openid-dora"
    assert notice.transaction_id == result["transactionId"]

    [order] = (await client.get("/control/orders")).json()
    assert order["state"] == "SUCCESS"
    assert order["transaction_id"] == notice.transaction_id
    assert notice.time_end.strftime("%Y%m%d%H%M%S") == order["time_end"]

    # WeChat repeats a notification with the same transaction.
    again = (await client.post("/control/pay-v3", json={"outTradeNo": "V3ORDER1"})).json()
    assert again["transactionId"] == notice.transaction_id
    assert recorder.notices[-1].transaction_id == notice.transaction_id


async def test_control_pay_v3_can_claim_another_amount(
    fake_v3: tuple[httpx.AsyncClient, Recorder],
) -> None:
    client, recorder = fake_v3
    await unified_order(client, "V3ORDER2", 4200)
    await client.post("/control/pay-v3", json={"outTradeNo": "V3ORDER2", "totalFee": 1})
    assert recorder.notices[-1].total_fee == 1


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"tamper": True}, "tampered ciphertext"),
        ({"wrongSignature": True}, "bad signature"),
        # Offsets, not instants: the timestamp is taken when the test runs, not collected.
        ({"timestamp": -360}, "stale timestamp"),
        ({"timestamp": 360}, "stale timestamp"),
    ],
)
async def test_control_pay_v3_simulates_bad_notifications(
    fake_v3: tuple[httpx.AsyncClient, Recorder], flags: dict[str, Any], reason: str
) -> None:
    client, recorder = fake_v3
    await unified_order(client, "V3ORDER3", 100)
    if "timestamp" in flags:
        flags = {"timestamp": int(datetime.now(UTC).timestamp()) + flags["timestamp"]}
    result = (await client.post("/control/pay-v3", json={"outTradeNo": "V3ORDER3", **flags})).json()
    assert result["status"] == 400
    assert json.loads(result["body"])["message"].startswith(reason)
    assert recorder.notices == []


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"outTradeNo": "nope"}, 404),
        ({}, 400),
        ({"outTradeNo": "x", "totalFee": "1"}, 400),
        ({"outTradeNo": "x", "timestamp": 1.5}, 400),
        ({"outTradeNo": "x", "tamper": "yes"}, 400),
        ([1], 400),
    ],
)
async def test_control_pay_v3_refuses_bad_input(
    fake_v3: tuple[httpx.AsyncClient, Recorder], payload: Any, status: int
) -> None:
    client, _ = fake_v3
    assert (await client.post("/control/pay-v3", json=payload)).status_code == status


async def test_control_pay_v3_needs_the_fake_private_key() -> None:
    fake = create_fake_wechat(replace(CREDS, fake_pay_private_key_pem=None))
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://wechat") as client:
        await unified_order(client, "V3ORDER4", 100)
        answer = await client.post("/control/pay-v3", json={"outTradeNo": "V3ORDER4"})
    assert answer.status_code == 409
