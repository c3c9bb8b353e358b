"""Withdrawals through the service against the live server's database and the fake WeChat:
the amount is held at once, released on rejection, paid once by transfer on approval (SPEC §16,
§19)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from app.enums import WithdrawalStatus
from app.errors import BadInput, Conflict, NotFound, UpstreamError
from app.ledger.models import LedgerTransaction
from app.ledger.service import PLATFORM_SALES, balance_of, post, user_cash
from app.members.service import login_with_openid
from app.rebate.models import PluginSettings
from app.wallet.models import Withdrawal
from app.wallet.service import wallet_of
from app.wallet.withdrawals import (
    PLATFORM_WITHDRAWAL_FEES,
    list_withdrawals,
    request_withdrawal,
    review_withdrawal,
    user_withdrawal_held,
    withdrawal_rules,
)
from app.wechat.client import WeChatGateway

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)


@pytest.fixture
def fake_wechat(server: Any) -> Any:
    """The fake WeChat's memory, without the transfers of earlier tests.

    The tables are emptied between tests and ids start again at 1, so an earlier test's transfer
    may carry the same merchant number as this test's.
    """
    state = server.app.routes[-1].app.state.wechat
    state.transfers.clear()
    return state


async def _user_with_cash(openid: str, cash_fen: int) -> int:
    user = await login_with_openid(openid, "session")
    async with in_transaction() as conn:
        await post(
            f"test-credit:{user.id}",
            "test_credit",
            [(PLATFORM_SALES, -cash_fen), (user_cash(user.id), cash_fen)],
            conn,
        )
    return user.id


async def _set_rules(**data: int) -> None:
    await PluginSettings.create(key="distribution", data=data)


async def _balance(user_id: int) -> int:
    return (await wallet_of(user_id)).balance_fen


async def test_rules_default_and_come_from_the_distribution_settings(server: Any) -> None:
    assert await withdrawal_rules() == (100, 0)
    await _set_rules(withdrawal_min_fen=500, withdrawal_fee_bp=60)
    assert await withdrawal_rules() == (500, 60)


@pytest.mark.parametrize("amount", [99, 1001, 0, -100, True, 150.0, "200", None])
async def test_a_bad_amount_is_refused_and_changes_nothing(server: Any, amount: Any) -> None:
    user_id = await _user_with_cash("wd-bad", 1000)
    with pytest.raises(BadInput) as caught:
        await request_withdrawal(user_id, amount, now=NOW)
    assert caught.value.field == "amountFen"
    assert await _balance(user_id) == 1000
    assert await Withdrawal.all().count() == 0
    assert await LedgerTransaction.all().count() == 1  # the credit only


async def test_a_fee_that_eats_the_whole_amount_is_refused(server: Any) -> None:
    user_id = await _user_with_cash("wd-fee", 1000)
    await _set_rules(withdrawal_fee_bp=10_000)
    with pytest.raises(BadInput, match="fee"):
        await request_withdrawal(user_id, 500, now=NOW)
    assert await _balance(user_id) == 1000


async def test_request_holds_the_amount_and_rejection_releases_it(
    server: Any, fake_wechat: Any
) -> None:
    user_id = await _user_with_cash("wd-reject", 1000)
    withdrawal = await request_withdrawal(user_id, 400, now=NOW)
    assert withdrawal.status == WithdrawalStatus.PENDING
    assert (withdrawal.amount_fen, withdrawal.fee_fen) == (400, 0)
    assert withdrawal.created_at == NOW
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", withdrawal.partner_trade_no or "")
    assert await _balance(user_id) == 600
    assert await balance_of(user_withdrawal_held(user_id)) == 400

    rejected = await review_withdrawal(
        withdrawal.id, False, gateway=server.services.wechat, now=LATER, reason="资料不符"
    )
    assert rejected.status == WithdrawalStatus.REJECTED
    assert (rejected.reviewed_at, rejected.reject_reason) == (LATER, "资料不符")
    assert await _balance(user_id) == 1000
    assert await balance_of(user_withdrawal_held(user_id)) == 0

    for approve in (False, True):
        with pytest.raises(Conflict):
            await review_withdrawal(
                withdrawal.id, approve, gateway=server.services.wechat, now=LATER
            )
    assert await _balance(user_id) == 1000
    assert fake_wechat.transfers == {}


async def test_approval_pays_the_amount_less_the_fee_once(server: Any, fake_wechat: Any) -> None:
    await _set_rules(withdrawal_min_fen=100, withdrawal_fee_bp=100)  # 1 %
    user_id = await _user_with_cash("wd-pay", 1500)
    withdrawal = await request_withdrawal(user_id, 1000, now=NOW)
    assert withdrawal.fee_fen == 10

    paid = await review_withdrawal(withdrawal.id, True, gateway=server.services.wechat, now=LATER)
    assert paid.status == WithdrawalStatus.PAID
    assert paid.paid_at == LATER
    transfer = fake_wechat.transfers[withdrawal.partner_trade_no]
    assert (transfer.openid, transfer.amount, transfer.desc) == ("wd-pay", 990, "提现")
    assert paid.payment_no == transfer.payment_no
    assert await _balance(user_id) == 500
    assert await balance_of(user_withdrawal_held(user_id)) == 0
    assert await balance_of(PLATFORM_WITHDRAWAL_FEES) == 10

    for approve in (True, False):
        with pytest.raises(Conflict):
            await review_withdrawal(
                withdrawal.id, approve, gateway=server.services.wechat, now=LATER
            )
    assert len(fake_wechat.transfers) == 1
    assert (await Withdrawal.get(id=withdrawal.id)).status == WithdrawalStatus.PAID


async def test_two_approvals_at_once_pay_once(server: Any, fake_wechat: Any) -> None:
    user_id = await _user_with_cash("wd-twice", 800)
    withdrawal = await request_withdrawal(user_id, 800, now=NOW)
    outcomes = await asyncio.gather(
        review_withdrawal(withdrawal.id, True, gateway=server.services.wechat, now=LATER),
        review_withdrawal(withdrawal.id, True, gateway=server.services.wechat, now=LATER),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["Conflict", "Withdrawal"]
    assert [t.amount for t in fake_wechat.transfers.values()] == [800]
    assert (await Withdrawal.get(id=withdrawal.id)).status == WithdrawalStatus.PAID


async def test_racing_requests_never_overdraw(server: Any) -> None:
    user_id = await _user_with_cash("wd-race", 1000)
    outcomes = await asyncio.gather(
        request_withdrawal(user_id, 700, now=NOW),
        request_withdrawal(user_id, 700, now=NOW),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["BadInput", "Withdrawal"]
    assert await _balance(user_id) == 300
    assert await balance_of(user_withdrawal_held(user_id)) == 700
    assert await Withdrawal.all().count() == 1


async def test_a_failed_transfer_stays_pending_and_a_later_approval_pays_once(
    server: Any, fake_wechat: Any
) -> None:
    user_id = await _user_with_cash("wd-retry", 600)
    withdrawal = await request_withdrawal(user_id, 600, now=NOW)
    unreachable = WeChatGateway(
        replace(server.services.credentials, pay_api_base_url="http://127.0.0.1:9/"), timeout=2
    )
    with pytest.raises(UpstreamError):
        await review_withdrawal(withdrawal.id, True, gateway=unreachable, now=LATER)
    failed = await Withdrawal.get(id=withdrawal.id)
    assert failed.status == WithdrawalStatus.PENDING
    assert failed.last_error
    assert failed.reviewed_at == LATER
    assert await _balance(user_id) == 0
    assert await balance_of(user_withdrawal_held(user_id)) == 600
    assert fake_wechat.transfers == {}

    # Approved once, the transfer may have gone through: only approving again can settle it.
    with pytest.raises(Conflict):
        await review_withdrawal(withdrawal.id, False, gateway=server.services.wechat, now=LATER)

    retried_at = LATER + timedelta(minutes=5)
    paid = await review_withdrawal(
        withdrawal.id, True, gateway=server.services.wechat, now=retried_at
    )
    assert (paid.status, paid.paid_at, paid.last_error) == (WithdrawalStatus.PAID, retried_at, None)
    assert paid.reviewed_at == LATER
    assert [t.amount for t in fake_wechat.transfers.values()] == [600]
    assert await balance_of(user_withdrawal_held(user_id)) == 0


async def test_an_unknown_withdrawal_is_not_found(server: Any) -> None:
    for wid in (12345, "nope"):
        with pytest.raises(NotFound):
            await review_withdrawal(wid, True, gateway=server.services.wechat, now=LATER)


async def test_lists_are_newest_first_and_filtered(server: Any) -> None:
    alice = await _user_with_cash("wd-alice", 1000)
    bob = await _user_with_cash("wd-bob", 1000)
    a1 = await request_withdrawal(alice, 100, now=NOW)
    b1 = await request_withdrawal(bob, 200, now=NOW)
    a2 = await request_withdrawal(alice, 300, now=NOW)
    await review_withdrawal(a1.id, False, gateway=server.services.wechat, now=LATER)

    def ids(found: list[Withdrawal]) -> list[int]:
        return [w.id for w in found]

    assert ids(await list_withdrawals(limit=10)) == [a2.id, b1.id, a1.id]
    assert ids(await list_withdrawals(user_id=alice, limit=10)) == [a2.id, a1.id]
    assert ids(await list_withdrawals(status=WithdrawalStatus.PENDING, limit=10)) == [
        a2.id,
        b1.id,
    ]
    assert ids(await list_withdrawals(before_id=a2.id, limit=1)) == [b1.id]
    assert ids(await list_withdrawals(user_id=bob, before_id=b1.id, limit=5)) == []
    with pytest.raises(BadInput):
        await list_withdrawals(limit=0)
