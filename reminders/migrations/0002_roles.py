from django.db import migrations

from core.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [("reminders", "0001_reminders"), ("core", "0002_roles")]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
