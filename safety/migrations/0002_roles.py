from django.db import migrations

from core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [("safety", "0001_initial"), ("cohorts", "0003_dlt_window")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
