from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0009_claim_index')]

    initial = False

    operations = [
        ops.AddField(
            model_name='PluginSettings',
            name='revision',
            field=fields.BigIntField(default=0),
        ),
    ]
