"""Double-entry books: accounts with stored balances, transactions keyed by cause, postings."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Account(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=96, unique=True)
    currency = fields.CharField(max_length=8)
    balance = fields.BigIntField(default=0)
    # Users' accounts must never go negative; the platform's and the outside world's may.
    may_go_negative = fields.BooleanField(default=False)
    user = fields.ForeignKeyField(
        "models.User", related_name="accounts", null=True, on_delete=fields.RESTRICT
    )

    class Meta:
        table = "ledger_account"


class LedgerTransaction(Model):
    id = fields.BigIntField(primary_key=True)
    # Derived from the cause (payment, payout, reset instant…): a retry finds it and does nothing.
    key = fields.CharField(max_length=160, unique=True)
    kind = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_transaction"


class Posting(Model):
    id = fields.BigIntField(primary_key=True)
    txn = fields.ForeignKeyField(
        "models.LedgerTransaction", related_name="postings", on_delete=fields.RESTRICT
    )
    account = fields.ForeignKeyField(
        "models.Account", related_name="postings", on_delete=fields.RESTRICT
    )
    currency = fields.CharField(max_length=8)
    amount = fields.BigIntField()

    class Meta:
        table = "ledger_posting"
        indexes = (("account_id",),)
