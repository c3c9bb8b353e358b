from tortoise import migrations
from tortoise.migrations import operations as ops

# Queue blocks shrink from 1024 to 256 entries (app/rebate/figures.py BUCKET_SIZE): the block
# sums are recomputed from the waiting entries, and every queue's version moves on so that no
# cached copy of the old blocks is read again.
RECOMPUTE = [
    "DELETE FROM queue_bucket",
    "INSERT INTO queue_bucket (queue_id, bucket, waiting_count, waiting_fen, completed_count, "
    "completed_fen) SELECT queue_id, number / 256, COUNT(*), SUM(entitlement_fen - rewarded_fen), "
    "SUM(CASE WHEN order_completed THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN order_completed THEN entitlement_fen - rewarded_fen ELSE 0 END) "
    "FROM queue_entry WHERE status = 'WAITING' GROUP BY queue_id, number / 256",
    "UPDATE rebate_queue SET version = version + 1",
]


class Migration(migrations.Migration):
    dependencies = [('models', '0007_commissions')]

    initial = False

    operations = [ops.RunSQL(RECOMPUTE)]
