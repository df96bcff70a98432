"""Reinstall the database triggers after the migrations that rebuilt their tables.

On SQLite, Django adds a constraint by rebuilding the table, which drops the table's triggers; so
the immutability and gate triggers (0003, 0004) are dropped and created again here, after every
migration that touched cohorts_cohort, safety_signoff or safety_safetyreview. A future migration
that alters one of those tables must be followed by a migration like this one.
"""

import importlib

from django.db import migrations

immutable = importlib.import_module("safety.migrations.0003_immutable_signatures")
gate = importlib.import_module("safety.migrations.0004_cohort_gate_trigger")


def reinstall(apps, schema_editor):
    for module in (gate, immutable):
        module.reverse(apps, schema_editor)  # DROP ... IF EXISTS
    for module in (immutable, gate):
        module.forward(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("safety", "0005_ae_checks"),
        ("cohorts", "0006_pause_and_sentinel_checks"),
    ]

    operations = [migrations.RunPython(reinstall, migrations.RunPython.noop)]
