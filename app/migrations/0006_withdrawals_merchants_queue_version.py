from tortoise import migrations
from tortoise.migrations import operations as ops
from app.enums import ApplicationStatus, WithdrawalStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_notifications')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MerchantApplication',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('applicant', fields.ForeignKeyField('models.User', source_field='applicant_id', db_constraint=True, to_field='id', related_name='merchant_applications', on_delete=OnDelete.RESTRICT)),
                ('referrer', fields.ForeignKeyField('models.User', source_field='referrer_id', null=True, db_constraint=True, to_field='id', related_name='referred_merchant_applications', on_delete=OnDelete.RESTRICT)),
                ('store_name', fields.CharField(max_length=64)),
                ('contact_name', fields.CharField(max_length=32)),
                ('phone', fields.CharField(max_length=16)),
                ('address', fields.CharField(max_length=128)),
                ('license_no', fields.CharField(max_length=18)),
                ('status', fields.CharEnumField(default=ApplicationStatus.PENDING, description='PENDING: PENDING\nAPPROVED: APPROVED\nREJECTED: REJECTED', enum_type=ApplicationStatus, max_length=16)),
                ('reject_reason', fields.CharField(null=True, max_length=256)),
                ('commission_rate_bp', fields.IntField(null=True)),
                ('discount_bp', fields.IntField(default=0)),
                ('store', fields.ForeignKeyField('models.Store', source_field='store_id', null=True, db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'merchant_application', 'app': 'models', 'indexes': [Index(fields=['applicant_id', 'id']), Index(fields=['status', 'id'])], 'pk_attr': 'id', 'table_description': "One user's request to open a store. An approval creates the store in the same transaction."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Withdrawal',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='withdrawals', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
                ('fee_fen', fields.BigIntField()),
                ('status', fields.CharEnumField(default=WithdrawalStatus.PENDING, description='PENDING: PENDING\nPAID: PAID\nREJECTED: REJECTED', enum_type=WithdrawalStatus, max_length=16)),
                ('partner_trade_no', fields.CharField(null=True, unique=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('payment_no', fields.CharField(null=True, max_length=64)),
                ('reject_reason', fields.CharField(null=True, max_length=255)),
                ('last_error', fields.CharField(null=True, max_length=500)),
            ],
            options={'table': 'withdrawal', 'app': 'models', 'indexes': [Index(fields=['user_id', 'id']), Index(fields=['status', 'id'])], 'pk_attr': 'id', 'table_description': "One request to pay `amount_fen − fee_fen` of a user's cash to their WeChat change."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Queue',
            name='version',
            field=fields.BigIntField(default=0),
        ),
    ]
