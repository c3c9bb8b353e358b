from tortoise import migrations
from tortoise.migrations import operations as ops
from app.enums import OrderKind
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ResetRun',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('instant_key', fields.CharField(unique=True, max_length=64)),
                ('scheduled_for', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cleared', fields.BigIntField(default=0)),
                ('forfeited_fen', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'reset_run', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One queue reset (SPEC §10): the unique instant key makes each instant take effect once.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Order',
            name='refund_reason',
            field=fields.CharField(null=True, max_length=256),
        ),
        ops.AddField(
            model_name='Queue',
            name='rr_group_size',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Queue',
            name='rr_points_left',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Queue',
            name='rr_points_seats',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Queue',
            name='rr_seats_left',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='QueueEntry',
            name='order_kind',
            field=fields.CharEnumField(description='MALL: MALL\nSTORE_GOODS: STORE_GOODS\nCASHIER: CASHIER', enum_type=OrderKind, max_length=16),
        ),
        ops.AddField(
            model_name='QueueEntry',
            name='paid_day',
            field=fields.DateField(),
        ),
        ops.AddField(
            model_name='QueueEntry',
            name='product_id',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='QueueEntry',
            name='store_id',
            field=fields.IntField(null=True),
        ),
        ops.AddIndex(
            model_name='QueueEntry',
            index=Index(fields=['user_id', 'product_id', 'paid_day']),
        ),
        ops.AddIndex(
            model_name='QueueEntry',
            index=Index(fields=['user_id', 'store_id', 'order_kind', 'paid_day']),
        ),
        ops.AlterModelOptions(
            name='WechatSession',
            options={'table': 'wechat_session', 'app': 'models', 'pk_attr': 'user_id', 'table_description': 'The session key from jscode2session: kept here, never returned by any API.'},
        ),
    ]
