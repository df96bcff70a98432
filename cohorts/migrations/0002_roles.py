from django.db import migrations

from core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [("cohorts", "0001_initial"), ("core", "0002_roles")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
