"""Transfers to a user's change (withdrawals) through the gateway, against the fake over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
from wechatpy.pay.utils import dict_to_xml

from app.errors import UpstreamError
from app.wechat.client import TRANSFER_ENDPOINT, TransferUncertain, WeChatGateway
from app.wechat.pay_notify import parse_v2_xml
from miniprogram_mock.signing import signed_xml

if TYPE_CHECKING:
    from conftest import FakeServer


def new_transfer_no() -> str:
    return "WD" + uuid.uuid4().hex[:24]


@pytest.fixture
def gateway(fake_server: FakeServer) -> WeChatGateway:
    return WeChatGateway(fake_server.creds)


async def test_transfer_pays_once_and_answers_like_wechat(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    number = new_transfer_no()
    answer = await gateway.transfer(
        partner_trade_no=number, openid="mock-openid-alice", amount_fen=990, description="提现"
    )
    assert answer["partner_trade_no"] == number
    assert answer["payment_no"]
    assert answer["payment_time"]
    assert answer["mch_appid"] == fake_server.creds.app_id
    assert answer["mchid"] == fake_server.creds.mch_id
    assert "sign" not in answer  # WeChat does not sign transfer answers

    done = fake_server.fake.transfers[number]
    assert (done.openid, done.amount, done.desc, done.check_name) == (
        "mock-openid-alice",
        990,
        "提现",
        "NO_CHECK",
    )


async def test_same_partner_trade_no_pays_once(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    number = new_transfer_no()
    arguments: dict[str, Any] = {
        "partner_trade_no": number,
        "openid": "mock-openid-bob",
        "amount_fen": 500,
        "description": "提现",
    }
    first = await gateway.transfer(**arguments)
    second = await gateway.transfer(**arguments)
    assert (second["payment_no"], second["payment_time"]) == (
        first["payment_no"],
        first["payment_time"],
    )
    assert [t for t in fake_server.fake.transfers if t == number] == [number]

    with pytest.raises(UpstreamError, match="PARAM_ERROR") as caught:
        await gateway.transfer(**(arguments | {"amount_fen": 501}))
    assert not isinstance(caught.value, TransferUncertain)
    assert fake_server.fake.transfers[number].amount == 500


async def test_force_check_sends_the_real_name(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    number = new_transfer_no()
    await gateway.transfer(
        partner_trade_no=number,
        openid="o",
        amount_fen=1,
        description="提现",
        check_name="FORCE_CHECK",
        real_name="张三",
    )
    assert fake_server.fake.transfers[number].re_user_name == "张三"


async def test_control_transfers_lists_them(
    fake_server: FakeServer, gateway: WeChatGateway
) -> None:
    number = new_transfer_no()
    await gateway.transfer(partner_trade_no=number, openid="o", amount_fen=7, description="提现")
    async with httpx.AsyncClient(base_url=fake_server.base_url) as client:
        listed = (await client.get("mock/control/transfers")).json()
    [mine] = [t for t in listed if t["partner_trade_no"] == number]
    assert mine["amount"] == 7
    assert mine["payment_no"]


async def test_wrong_api_key_is_a_refusal(fake_server: FakeServer) -> None:
    gateway = WeChatGateway(replace(fake_server.creds, api_key="W" * 32))
    number = new_transfer_no()
    with pytest.raises(UpstreamError, match="SIGN_ERROR") as caught:
        await gateway.transfer(partner_trade_no=number, openid="o", amount_fen=1, description="x")
    assert not isinstance(caught.value, TransferUncertain)
    assert number not in fake_server.fake.transfers


@pytest.mark.parametrize(
    "overrides",
    [
        {"partner_trade_no": "WD-1"},
        {"partner_trade_no": "W" * 33},
        {"partner_trade_no": ""},
        {"amount_fen": 0},
        {"amount_fen": -5},
        {"amount_fen": True},
        {"amount_fen": 1.5},
        {"openid": ""},
        {"description": " "},
        {"check_name": "OPTION_CHECK"},
        {"check_name": "FORCE_CHECK"},
    ],
)
async def test_invalid_arguments_are_refused_before_calling(
    fake_server: FakeServer, gateway: WeChatGateway, overrides: dict[str, Any]
) -> None:
    arguments: dict[str, Any] = {
        "partner_trade_no": new_transfer_no(),
        "openid": "o",
        "amount_fen": 1,
        "description": "提现",
    }
    with pytest.raises(ValueError):
        await gateway.transfer(**(arguments | overrides))
    assert arguments["partner_trade_no"] not in fake_server.fake.transfers


async def test_transfer_goes_to_the_configured_host(
    fake_server: FakeServer, gateway: WeChatGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any, **kw: Any) -> Any:
        seen.append(url)
        return original(self, method, url, *args, **kw)

    monkeypatch.setattr(requests.Session, "request", recording)
    await gateway.transfer(
        partner_trade_no=new_transfer_no(), openid="o", amount_fen=1, description="x"
    )
    assert seen == [fake_server.creds.pay_api_base_url + TRANSFER_ENDPOINT]


async def test_unreachable_wechat_leaves_the_outcome_unknown(fake_server: FakeServer) -> None:
    # Port 1 on loopback has no listener.
    gateway = WeChatGateway(
        replace(fake_server.creds, pay_api_base_url="http://127.0.0.1:1/pay/"), timeout=5
    )
    with pytest.raises(TransferUncertain, match="unreachable"):
        await gateway.transfer(
            partner_trade_no=new_transfer_no(), openid="o", amount_fen=1, description="x"
        )


def canned(xml: str, status: int = 200) -> Any:
    """A stand-in for requests.Session.request that answers `xml` without any network."""

    def request(self: requests.Session, method: str, url: str, *args: Any, **kw: Any) -> Any:
        response = requests.Response()
        response.status_code = status
        response._content = xml.encode()
        response.url = url
        response.request = requests.Request(method, url).prepare()
        return response

    return request


def transfer_answer(creds: Any, **fields: Any) -> str:
    answer = {
        "return_code": "SUCCESS",
        "mch_appid": creds.app_id,
        "mchid": creds.mch_id,
        "nonce_str": "n",
        "result_code": "SUCCESS",
        **fields,
    }
    return dict_to_xml({key: str(value) for key, value in answer.items()})


@pytest.mark.parametrize(
    ("answer", "status", "uncertain"),
    [
        ({"result_code": "FAIL", "err_code": "SYSTEMERROR", "err_code_des": "系统繁忙"}, 200, True),
        ({"result_code": "FAIL", "err_code": "NOTENOUGH", "err_code_des": "余额不足"}, 200, False),
        ({"result_code": "FAIL", "err_code": "OPENID_ERROR", "err_code_des": "x"}, 200, False),
        ({}, 502, True),
        (None, 200, True),
        ({"mchid": "1999", "partner_trade_no": "WD1", "payment_no": "1"}, 200, True),
        ({"partner_trade_no": "WD2", "payment_no": "1"}, 200, True),
        ({"partner_trade_no": "WD1"}, 200, True),
    ],
)
async def test_outcomes_wechat_leaves_open_are_uncertain(
    gateway: WeChatGateway,
    monkeypatch: pytest.MonkeyPatch,
    answer: dict[str, Any] | None,
    status: int,
    uncertain: bool,
) -> None:
    xml = "not xml" if answer is None else transfer_answer(gateway.credentials, **answer)
    monkeypatch.setattr(requests.Session, "request", canned(xml, status))
    with pytest.raises(UpstreamError) as caught:
        await gateway.transfer(partner_trade_no="WD1", openid="o", amount_fen=1, description="x")
    assert isinstance(caught.value, TransferUncertain) is uncertain


async def test_an_unsigned_answer_is_accepted_only_for_transfers(
    gateway: WeChatGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    xml = transfer_answer(
        gateway.credentials, partner_trade_no="WD1", payment_no="100", payment_time="t"
    )
    monkeypatch.setattr(requests.Session, "request", canned(xml))
    answer = await gateway.transfer(
        partner_trade_no="WD1", openid="o", amount_fen=1, description="x"
    )
    assert answer["payment_no"] == "100"
    # The same unsigned answer anywhere else is refused.
    with pytest.raises(UpstreamError, match="bad signature"):
        await gateway.order_query("R1")


async def post_transfer(fake_server: FakeServer, **fields: Any) -> dict[str, str]:
    creds = fake_server.creds
    request = {
        "mch_appid": creds.app_id,
        "mchid": creds.mch_id,
        "partner_trade_no": new_transfer_no(),
        "openid": "o",
        "check_name": "NO_CHECK",
        "amount": 1,
        "desc": "x",
        **fields,
    }
    body = signed_xml({k: v for k, v in request.items() if v is not None}, creds.api_key)
    async with httpx.AsyncClient(base_url=fake_server.base_url) as client:
        answer = await client.post("mock/pay/" + TRANSFER_ENDPOINT, content=body)
    return parse_v2_xml(answer.content)


@pytest.mark.parametrize(
    ("fields", "err_code"),
    [
        ({"mch_appid": "wxother"}, "PARAM_ERROR"),
        ({"mchid": "1999"}, "PARAM_ERROR"),
        ({"amount": 0}, "AMOUNT_LIMIT"),
        ({"amount": "-1"}, "AMOUNT_LIMIT"),
        ({"openid": None}, "PARAM_ERROR"),
        ({"check_name": "MAYBE"}, "PARAM_ERROR"),
    ],
)
async def test_the_fake_refuses_what_wechat_refuses(
    fake_server: FakeServer, fields: dict[str, Any], err_code: str
) -> None:
    answer = await post_transfer(fake_server, **fields)
    assert (answer["return_code"], answer["result_code"]) == ("SUCCESS", "FAIL")
    assert answer["err_code"] == err_code


async def test_the_fake_checks_the_signature(fake_server: FakeServer) -> None:
    creds = fake_server.creds
    body = signed_xml(
        {
            "mch_appid": creds.app_id,
            "mchid": creds.mch_id,
            "partner_trade_no": new_transfer_no(),
            "openid": "o",
            "check_name": "NO_CHECK",
            "amount": 1,
            "desc": "x",
        },
        "S" * 32,
    )
    async with httpx.AsyncClient(base_url=fake_server.base_url) as client:
        answer = await client.post("mock/pay/" + TRANSFER_ENDPOINT, content=body)
    assert parse_v2_xml(answer.content)["err_code"] == "SIGN_ERROR"
