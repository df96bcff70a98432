from django.db import migrations

from core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [("cohorts", "0008_gilbert_syndrome")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
