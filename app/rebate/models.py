"""Queues, their entries, contributions and payouts, and the plugin's stored settings."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.enums import EntryStatus, OrderKind, RatioSource, RewardOrder


class PluginSettings(Model):
    """One JSON document per settings area ("rebate", "distribution"), validated on the way in."""

    key = fields.CharField(max_length=32, primary_key=True)
    data = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)
    # One more at every save: a reader that learns the revision with other rows knows whether
    # the settings it holds are still current.
    revision = fields.BigIntField(default=0)

    class Meta:
        table = "plugin_settings"


class Queue(Model):
    """One queue key (SPEC §3). Its row is the lock that makes distribution serial (SPEC §7)."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64, unique=True)
    next_number = fields.BigIntField(default=1)
    # Running figures kept in the same transaction as the entries they sum, so the progress screen
    # and the health view read them without scanning the queue.
    waiting_count = fields.BigIntField(default=0)
    liability_fen = fields.BigIntField(default=0)
    contributed_fen = fields.BigIntField(default=0)
    paid_out_fen = fields.BigIntField(default=0)
    returned_fen = fields.BigIntField(default=0)
    # Random return (随机返, SPEC §6): the group being filled. Kept on the locked queue row, so
    # exactly `pointsSeats` of every group convert, across restarts and concurrent workers.
    rr_group_size = fields.IntField(default=0)
    rr_points_seats = fields.IntField(default=0)
    rr_seats_left = fields.IntField(default=0)
    rr_points_left = fields.IntField(default=0)
    # Bumped by every transaction that changes the queue's block sums: a cached copy of them is
    # used only while its version is the database's (app/rebate/figure_cache.py).
    version = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "rebate_queue"


class QueueEntry(Model):
    id = fields.BigIntField(primary_key=True)
    queue = fields.ForeignKeyField(
        "models.Queue", related_name="entries", on_delete=fields.RESTRICT
    )
    queue_key = fields.CharField(max_length=64)
    number = fields.BigIntField()
    # The line's order and its buyer, copied for the indexes: the database checks the line's
    # key, `rebate audit` checks the copies (migration 0011).
    order = fields.ForeignKeyField(
        "models.Order", related_name="entries", on_delete=fields.RESTRICT, db_constraint=False
    )
    line = fields.OneToOneField("models.OrderLine", related_name="entry", on_delete=fields.RESTRICT)
    user = fields.ForeignKeyField(
        "models.User", related_name="entries", on_delete=fields.RESTRICT, db_constraint=False
    )
    # Where the line came from, for the limits of its scopes (SPEC §6): the product, the store
    # and the kind of order, and the operator's calendar day of the payment.
    product_id = fields.IntField(null=True)
    store_id = fields.IntField(null=True)
    order_kind = fields.CharEnumField(OrderKind, max_length=16)
    paid_day = fields.DateField()
    status = fields.CharEnumField(EntryStatus, max_length=16, default=EntryStatus.WAITING)
    paid_fen = fields.BigIntField()
    ratio_bp = fields.IntField()
    ratio_source = fields.CharEnumField(RatioSource, max_length=16)
    entitlement_fen = fields.BigIntField()
    rewarded_fen = fields.BigIntField(default=0)
    # COMPLETED_FIRST pays only entries whose order is completed (SPEC §7).
    order_completed = fields.BooleanField(default=False)
    # The right to draw and the configuration it draws from, fixed at the settlement event (§8).
    lottery_config = fields.JSONField(null=True)
    lottery_drawn = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "queue_entry"
        unique_together = (("queue", "number"),)
        indexes = (
            ("queue_id", "status", "number"),
            ("user_id", "id"),
            ("user_id", "product_id", "paid_day"),
            ("user_id", "store_id", "order_kind", "paid_day"),
        )


class Contribution(Model):
    """A line's extraction into its queue (§4.1): paid out plus returned equals the amount."""

    id = fields.BigIntField(primary_key=True)
    queue = fields.ForeignKeyField(
        "models.Queue", related_name="contributions", on_delete=fields.RESTRICT
    )
    # The line's order, copied: checked by `rebate audit`, not by the database (migration 0011).
    order = fields.ForeignKeyField(
        "models.Order", related_name="contributions", on_delete=fields.RESTRICT, db_constraint=False
    )
    line = fields.OneToOneField(
        "models.OrderLine", related_name="contribution", on_delete=fields.RESTRICT
    )
    amount_fen = fields.BigIntField()
    paid_out_fen = fields.BigIntField(default=0)
    returned_fen = fields.BigIntField(default=0)
    paused = fields.BooleanField(default=False)
    # The payout rule in force when it was distributed: the FIFO audit judges it by that rule.
    reward_order = fields.CharEnumField(RewardOrder, max_length=16, default=RewardOrder.QUEUE_ORDER)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contribution"


class Payout(Model):
    id = fields.BigIntField(primary_key=True)
    contribution = fields.ForeignKeyField(
        "models.Contribution", related_name="payouts", on_delete=fields.RESTRICT
    )
    entry = fields.ForeignKeyField(
        "models.QueueEntry", related_name="payouts", on_delete=fields.RESTRICT
    )
    # The contribution's order, copied: checked by `rebate audit`, not by the database.
    from_order = fields.ForeignKeyField(
        "models.Order", related_name="payouts_made", on_delete=fields.RESTRICT, db_constraint=False
    )
    amount_fen = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "payout"
        unique_together = (("contribution", "entry"),)
        indexes = (("entry_id", "id"),)


class ResetRun(Model):
    """One queue reset (SPEC §10): the unique instant key makes each instant take effect once."""

    id = fields.IntField(primary_key=True)
    instant_key = fields.CharField(max_length=64, unique=True)
    scheduled_for = fields.DatetimeField(null=True)
    cleared = fields.BigIntField(default=0)
    forfeited_fen = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "reset_run"


class QueueBucket(Model):
    """Sums of the waiting entries of one queue in one block of entry numbers.

    Position and amount ahead add up the blocks before an entry and read the entries of its own
    block only, so they cost the same behind a million entries as behind ten (SPEC §12).
    `completed_*` count only entries whose order is completed: the eligible ones under
    COMPLETED_FIRST.
    """

    id = fields.BigIntField(primary_key=True)
    queue = fields.ForeignKeyField("models.Queue", related_name="buckets", on_delete=fields.CASCADE)
    bucket = fields.BigIntField()
    waiting_count = fields.BigIntField(default=0)
    waiting_fen = fields.BigIntField(default=0)
    completed_count = fields.BigIntField(default=0)
    completed_fen = fields.BigIntField(default=0)

    class Meta:
        table = "queue_bucket"
        unique_together = (("queue", "bucket"),)


class QueueDay(Model):
    """One queue's money on one day of the operator's calendar: inflow, payouts, returns."""

    id = fields.BigIntField(primary_key=True)
    queue = fields.ForeignKeyField("models.Queue", related_name="days", on_delete=fields.CASCADE)
    day = fields.DateField()
    contributed_fen = fields.BigIntField(default=0)
    paid_out_fen = fields.BigIntField(default=0)
    returned_fen = fields.BigIntField(default=0)

    class Meta:
        table = "queue_day"
        unique_together = (("queue", "day"),)
