from django.db import migrations

from core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [("cohorts", "0012_follow_up_lifecycle")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
