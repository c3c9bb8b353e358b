from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_queue_figures')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Order',
            name='refund_status',
            field=fields.CharField(null=True, max_length=16),
        ),
    ]
