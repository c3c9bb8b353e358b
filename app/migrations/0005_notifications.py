from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from app.notifications.models import NotificationEvent, NotificationStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_refund_status')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.CASCADE)),
                ('event', fields.CharEnumField(description='ENTRY_JOINED: ENTRY_JOINED\nPAYOUT_RECEIVED: PAYOUT_RECEIVED\nENTRY_COMPLETED: ENTRY_COMPLETED\nLOTTERY_DRAWN: LOTTERY_DRAWN\nEXCHANGED: EXCHANGED\nCLEARED_BY_RESET: CLEARED_BY_RESET\nAPPLICATION_REVIEWED: APPLICATION_REVIEWED\nCOMMISSION_CREDITED: COMMISSION_CREDITED\nWITHDRAWAL_PAID: WITHDRAWAL_PAID', enum_type=NotificationEvent, max_length=32)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=NotificationStatus.PENDING, description='PENDING: PENDING\nSENT: SENT\nSKIPPED: SKIPPED\nFAILED: FAILED', enum_type=NotificationStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(null=True, max_length=256)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notification', 'app': 'models', 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['user_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
