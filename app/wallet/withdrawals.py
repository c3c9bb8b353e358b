"""Withdrawals (提现, SPEC §16): hold the amount, then pay it by WeChat transfer or release it.

The books (SPEC §19), per withdrawal:
- request  `withdrawal-hold:{id}`:    user cash −amount, user withdrawal_held +amount;
- reject   `withdrawal-release:{id}`: held −amount, cash +amount;
- paid     `withdrawal-paid:{id}`:    held −amount, WeChat Pay +(amount − fee), platform fees +fee.
Each is posted in the same database transaction as the status change it explains.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.enums import WithdrawalStatus
from app.errors import BadInput, Conflict, NotFound, UpstreamError
from app.ledger.service import (
    EXTERNAL_WECHAT,
    AccountRef,
    Currency,
    InsufficientBalance,
    post,
    user_cash,
)
from app.members.models import User
from app.money import apply_ratio
from app.wallet.models import Withdrawal
from app.wechat.client import TransferUncertain, WeChatGateway

DEFAULT_WITHDRAWAL_MIN_FEN = 100
DEFAULT_WITHDRAWAL_FEE_BP = 0
MAX_PAGE = 100
TRANSFER_DESCRIPTION = "提现"
# The platform keeps the fee; it is the platform's account, so it is not held to zero.
PLATFORM_WITHDRAWAL_FEES = AccountRef(
    "platform:withdrawal_fees", Currency.FEN, may_go_negative=True
)
_LAST_ERROR_LENGTH = 500


def user_withdrawal_held(user_id: int) -> AccountRef:
    """Cash a user has asked to withdraw: out of their balance, not yet paid or released."""
    return AccountRef(f"user:{user_id}:withdrawal_held", Currency.FEN, user_id=user_id)


def partner_trade_no_for(withdrawal: Withdrawal) -> str:
    """The transfer's merchant number: letters and digits, fixed for the withdrawal's life.

    The creation date is part of it so that a re-created database, whose ids start again at 1,
    does not send WeChat a number it already paid under the same merchant account.
    """
    return f"WD{withdrawal.created_at:%Y%m%d}{withdrawal.id:012d}"


def _setting(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"distribution setting {key} is not a non-negative integer: {value!r}")
    return value


async def withdrawal_rules(conn: BaseDBAsyncClient | None = None) -> tuple[int, int]:
    """(withdrawalMinFen, withdrawalFeeBp) from the "distribution" settings, or their defaults."""
    from app.rebate.models import PluginSettings

    query = PluginSettings.filter(key="distribution")
    if conn is not None:
        query = query.using_db(conn)
    row = await query.first()
    data = row.data if row is not None and isinstance(row.data, dict) else {}
    return (
        _setting(data, "withdrawal_min_fen", DEFAULT_WITHDRAWAL_MIN_FEN),
        _setting(data, "withdrawal_fee_bp", DEFAULT_WITHDRAWAL_FEE_BP),
    )


def _is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def request_withdrawal(user_id: int, amount_fen: Any, *, now: datetime) -> Withdrawal:
    """Ask to withdraw `amount_fen` of the user's cash; the amount leaves the balance at once.

    BadInput (field `amountFen`) when the amount is not a whole number, is below the minimum,
    leaves nothing after the fee, or exceeds the balance; nothing is written then.
    """
    if not _is_whole_number(amount_fen) or amount_fen <= 0:
        raise BadInput("amountFen must be a positive whole number of fen", field="amountFen")
    async with in_transaction() as conn:
        min_fen, fee_bp = await withdrawal_rules(conn)
        if amount_fen < min_fen:
            raise BadInput(f"the minimum withdrawal is {min_fen} fen", field="amountFen")
        fee_fen = apply_ratio(amount_fen, fee_bp)
        if fee_fen >= amount_fen:
            # WeChat transfers only positive amounts, and the fee may not eat the whole amount.
            raise BadInput("amountFen does not cover the withdrawal fee", field="amountFen")
        withdrawal = await Withdrawal.create(
            user_id=user_id,
            amount_fen=amount_fen,
            fee_fen=fee_fen,
            status=WithdrawalStatus.PENDING,
            created_at=now,
            using_db=conn,
        )
        withdrawal.partner_trade_no = partner_trade_no_for(withdrawal)
        await withdrawal.save(update_fields=["partner_trade_no"], using_db=conn)
        try:
            # No balance read beforehand: the ledger's conditional debit is what stops two
            # racing requests from spending the same cash, and it rolls this row back too.
            await post(
                f"withdrawal-hold:{withdrawal.id}",
                "withdrawal_hold",
                [(user_cash(user_id), -amount_fen), (user_withdrawal_held(user_id), amount_fen)],
                conn,
            )
        except InsufficientBalance:
            raise BadInput("amountFen exceeds the wallet balance", field="amountFen") from None
    return withdrawal


def _withdrawal_id(value: Any) -> int:
    if isinstance(value, bool):
        raise NotFound(f"withdrawal {value} not found", field="id")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFound(f"withdrawal {value} not found", field="id") from None


async def _locked(withdrawal_id: int, conn: BaseDBAsyncClient) -> Withdrawal:
    withdrawal = (
        await Withdrawal.filter(id=withdrawal_id).using_db(conn).select_for_update().first()
    )
    if withdrawal is None:
        raise NotFound(f"withdrawal {withdrawal_id} not found", field="id")
    return withdrawal


def _require_pending(withdrawal: Withdrawal) -> None:
    if withdrawal.status != WithdrawalStatus.PENDING:
        raise Conflict(f"withdrawal {withdrawal.id} is already {withdrawal.status.value}")


async def review_withdrawal(
    withdrawal_id: Any,
    approve: bool,
    *,
    gateway: WeChatGateway,
    now: datetime,
    reason: str | None = None,
) -> Withdrawal:
    """The operator's decision on a PENDING withdrawal (Conflict otherwise).

    Reject releases the held amount back to the user's cash. Approve transfers amount − fee to
    the user's WeChat change and records it PAID; when the transfer fails or its outcome is
    unknown, the withdrawal stays PENDING with `last_error` and UpstreamError is raised: approving
    again retries with the same merchant number, which WeChat pays at most once.
    """
    wid = _withdrawal_id(withdrawal_id)
    if approve:
        return await _approve(wid, gateway=gateway, now=now)
    return await _reject(wid, now=now, reason=reason)


async def _reject(withdrawal_id: int, *, now: datetime, reason: str | None) -> Withdrawal:
    async with in_transaction() as conn:
        withdrawal = await _locked(withdrawal_id, conn)
        _require_pending(withdrawal)
        if withdrawal.reviewed_at is not None:
            # Approved before: a transfer may have reached WeChat, and releasing the hold too
            # would pay the user twice. Only a retried approval can settle it.
            raise Conflict(
                f"withdrawal {withdrawal.id} was approved and its transfer may have gone "
                "through: approve it again to complete it"
            )
        await post(
            f"withdrawal-release:{withdrawal.id}",
            "withdrawal_release",
            [
                (user_withdrawal_held(withdrawal.user_id), -withdrawal.amount_fen),
                (user_cash(withdrawal.user_id), withdrawal.amount_fen),
            ],
            conn,
        )
        withdrawal.status = WithdrawalStatus.REJECTED
        withdrawal.reviewed_at = now
        withdrawal.reject_reason = reason[:255] if reason else None
        await withdrawal.save(
            update_fields=["status", "reviewed_at", "reject_reason"], using_db=conn
        )
    return withdrawal


async def _approve(withdrawal_id: int, *, gateway: WeChatGateway, now: datetime) -> Withdrawal:
    # Mark the approval before any transfer, so that no rejection can release a hold that
    # WeChat may be paying out at the same time.
    async with in_transaction() as conn:
        withdrawal = await _locked(withdrawal_id, conn)
        _require_pending(withdrawal)
        if withdrawal.reviewed_at is None:
            withdrawal.reviewed_at = now
            await withdrawal.save(update_fields=["reviewed_at"], using_db=conn)
        openid = (
            await User.filter(id=withdrawal.user_id).using_db(conn).values_list("openid", flat=True)
        )
    if not withdrawal.partner_trade_no or not openid:
        raise Conflict(f"withdrawal {withdrawal.id} has no transfer number or payee")

    # Outside any transaction: a row lock must not be held across a call that can take seconds.
    try:
        answer = await gateway.transfer(
            partner_trade_no=withdrawal.partner_trade_no,
            openid=openid[0],
            amount_fen=withdrawal.amount_fen - withdrawal.fee_fen,
            description=TRANSFER_DESCRIPTION,
        )
    except UpstreamError as exc:
        await _record_failure(withdrawal.id, exc.message)
        if isinstance(exc, TransferUncertain):
            raise UpstreamError(
                f"withdrawal {withdrawal.id}: WeChat may or may not have paid ({exc.message}); "
                "approve it again to retry, it is paid at most once"
            ) from exc
        raise

    async with in_transaction() as conn:
        withdrawal = await _locked(withdrawal.id, conn)
        # A concurrent approval recorded the same payment first (WeChat paid the number once).
        _require_pending(withdrawal)
        await post(
            f"withdrawal-paid:{withdrawal.id}",
            "withdrawal_paid",
            [
                (user_withdrawal_held(withdrawal.user_id), -withdrawal.amount_fen),
                (EXTERNAL_WECHAT, withdrawal.amount_fen - withdrawal.fee_fen),
                (PLATFORM_WITHDRAWAL_FEES, withdrawal.fee_fen),
            ],
            conn,
        )
        withdrawal.status = WithdrawalStatus.PAID
        withdrawal.payment_no = answer["payment_no"]
        withdrawal.paid_at = now
        withdrawal.last_error = None
        await withdrawal.save(
            update_fields=["status", "payment_no", "paid_at", "last_error"], using_db=conn
        )
    return withdrawal


async def _record_failure(withdrawal_id: int, message: str) -> None:
    """Keep the failed attempt's reason on a still PENDING withdrawal, for the operator."""
    async with in_transaction() as conn:
        withdrawal = await _locked(withdrawal_id, conn)
        if withdrawal.status != WithdrawalStatus.PENDING:
            return  # another approval paid it meanwhile: its success is the last word
        withdrawal.last_error = message[:_LAST_ERROR_LENGTH]
        await withdrawal.save(update_fields=["last_error"], using_db=conn)


async def list_withdrawals(
    *,
    user_id: int | None = None,
    status: WithdrawalStatus | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[Withdrawal]:
    """Withdrawals newest first, of one user and/or one status, with ids below `before_id`."""
    # One more than a page is allowed: the API asks for it to know whether another page follows.
    if not _is_whole_number(limit) or not 0 < limit <= MAX_PAGE + 1:
        raise BadInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    query = Withdrawal.all()
    if user_id is not None:
        query = query.filter(user_id=user_id)
    if status is not None:
        query = query.filter(status=status)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit)
