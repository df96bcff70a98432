"""The data lock's permission (issue 12, item 9), given to the Data manager role."""

from django.db import migrations

from core.roles import sync_roles


class Migration(migrations.Migration):

    dependencies = [
        ('cohorts', '0010_history_user_protect'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='cohort',
            options={'ordering': ['trial', 'sequence'], 'permissions': [('open_first_cohort', 'Can open the first cohort of a trial'), ('correct_locked_data', 'Can correct the clinical records of a closed cohort, with a reason')]},
        ),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
