from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

# Four columns are copies of what a row's own key already leads to: an entry's order and buyer
# (its line's order, and that order's user), a contribution's order (its line's order) and a
# payout's paying order (its contribution's order). The keys they copy stay checked; a check on
# the copy only said that it named some order or user, not the right one, which `rebate audit`
# now checks. On PostgreSQL each check is a lookup and a row lock per row written, in the
# settlement's busiest transaction, under its queue's lock: with these four gone, the settle
# benchmark went from 5,202-6,032 to 6,368-7,258 orders/s (three runs each, alternating).
# SQLite keeps them.
COPIES = (
    ("queue_entry", "order_id", "app_order"),
    ("queue_entry", "user_id", "app_user"),
    ("contribution", "order_id", "app_order"),
    ("payout", "from_order_id", "app_order"),
)

_CONSTRAINT = (
    "SELECT c.conname AS name FROM pg_constraint c JOIN pg_attribute a "
    "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
    "WHERE c.contype = 'f' AND c.conrelid = $1::regclass AND a.attname = $2"
)


async def _drop_copy_checks(apps, editor) -> None:
    if editor.DIALECT != "postgres":
        return
    for table, column, _ in COPIES:
        for row in await editor.client.execute_query_dict(_CONSTRAINT, [table, column]):
            await editor.client.execute_script(
                f'ALTER TABLE "{table}" DROP CONSTRAINT "{row["name"]}"'
            )


async def _restore_copy_checks(apps, editor) -> None:
    if editor.DIALECT != "postgres":
        return
    for table, column, target in COPIES:
        await editor.client.execute_script(
            f'ALTER TABLE "{table}" ADD FOREIGN KEY ("{column}") '
            f'REFERENCES "{target}" ("id") ON DELETE RESTRICT'
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0010_settings_revision')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='Contribution',
            name='order',
            field=fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=False, to_field='id', related_name='contributions', on_delete=OnDelete.RESTRICT),
        ),
        ops.AlterField(
            model_name='Payout',
            name='from_order',
            field=fields.ForeignKeyField('models.Order', source_field='from_order_id', db_constraint=False, to_field='id', related_name='payouts_made', on_delete=OnDelete.RESTRICT),
        ),
        ops.AlterField(
            model_name='QueueEntry',
            name='order',
            field=fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=False, to_field='id', related_name='entries', on_delete=OnDelete.RESTRICT),
        ),
        ops.AlterField(
            model_name='QueueEntry',
            name='user',
            field=fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=False, to_field='id', related_name='entries', on_delete=OnDelete.RESTRICT),
        ),
        ops.RunPython(_drop_copy_checks, _restore_copy_checks),
    ]
