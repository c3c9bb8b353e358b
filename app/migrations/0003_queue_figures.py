from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_queue_law')]

    initial = False

    operations = [
        ops.CreateModel(
            name='QueueBucket',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('queue', fields.ForeignKeyField('models.Queue', source_field='queue_id', db_constraint=True, to_field='id', related_name='buckets', on_delete=OnDelete.CASCADE)),
                ('bucket', fields.BigIntField()),
                ('waiting_count', fields.BigIntField(default=0)),
                ('waiting_fen', fields.BigIntField(default=0)),
                ('completed_count', fields.BigIntField(default=0)),
                ('completed_fen', fields.BigIntField(default=0)),
            ],
            options={'table': 'queue_bucket', 'app': 'models', 'unique_together': (('queue', 'bucket'),), 'pk_attr': 'id', 'table_description': 'Sums of the waiting entries of one queue in one block of entry numbers.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='QueueDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('queue', fields.ForeignKeyField('models.Queue', source_field='queue_id', db_constraint=True, to_field='id', related_name='days', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
                ('contributed_fen', fields.BigIntField(default=0)),
                ('paid_out_fen', fields.BigIntField(default=0)),
                ('returned_fen', fields.BigIntField(default=0)),
            ],
            options={'table': 'queue_day', 'app': 'models', 'unique_together': (('queue', 'day'),), 'pk_attr': 'id', 'table_description': "One queue's money on one day of the operator's calendar: inflow, payouts, returns."},
            bases=['Model'],
        ),
    ]
