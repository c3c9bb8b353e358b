from tortoise import migrations
from tortoise.migrations import operations as ops
from app.enums import CommissionKind, CommissionStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_withdrawals_merchants_queue_version')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Commission',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='commissions', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='DIRECT: DIRECT\nINDIRECT: INDIRECT\nLEVEL_DIFFERENCE: LEVEL_DIFFERENCE\nSHAREHOLDER_DIVIDEND: SHAREHOLDER_DIVIDEND\nMERCHANT_REFERRAL: MERCHANT_REFERRAL', enum_type=CommissionKind, max_length=32)),
                ('status', fields.CharEnumField(default=CommissionStatus.PENDING, description='PENDING: PENDING\nAVAILABLE: AVAILABLE\nCANCELLED: CANCELLED', enum_type=CommissionStatus, max_length=16)),
                ('amount_fen', fields.BigIntField()),
                ('from_user', fields.ForeignKeyField('models.User', source_field='from_user_id', null=True, db_constraint=True, to_field='id', related_name='commissions_given', on_delete=OnDelete.RESTRICT)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', null=True, db_constraint=True, to_field='id', related_name='commissions', on_delete=OnDelete.RESTRICT)),
                ('line', fields.ForeignKeyField('models.OrderLine', source_field='line_id', null=True, db_constraint=True, to_field='id', related_name='commissions', on_delete=OnDelete.RESTRICT)),
                ('store', fields.ForeignKeyField('models.Store', source_field='store_id', null=True, db_constraint=True, to_field='id', related_name='commissions', on_delete=OnDelete.RESTRICT)),
                ('key', fields.CharField(unique=True, max_length=128)),
                ('available_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'commission', 'app': 'models', 'indexes': [Index(fields=['user_id', 'id']), Index(fields=['status', 'available_at'])], 'pk_attr': 'id', 'table_description': 'One reward to one beneficiary for one cause, mirrored by the ledger.'},
            bases=['Model'],
        ),
    ]
