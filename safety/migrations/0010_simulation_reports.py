"""Simulation reports (issue 15): operating characteristics a data manager accepts for a protocol version.

Held by the database too: a report is inserted only while its trial has no cohort (the first cohort's
opening ends the window; both lock the trial row in their services), and a recorded report never changes
and is never deleted. Then the role groups are synced (data managers add, every staff role views).
"""

import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models

from core.roles import sync_roles

AFTER_FIRST_COHORT = "A simulation report is recorded before the first cohort of the trial opens"
FROZEN = "A recorded simulation report never changes and is never deleted"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION safety_simulationreport_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION '{FROZEN}' USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM cohorts_cohort c WHERE c.trial_id = NEW.trial_id) THEN
    RAISE EXCEPTION '{AFTER_FIRST_COHORT}' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_simulationreport_guard BEFORE INSERT OR UPDATE OR DELETE ON safety_simulationreport
FOR EACH ROW EXECUTE FUNCTION safety_simulationreport_guard();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS safety_simulationreport_guard ON safety_simulationreport;
DROP FUNCTION IF EXISTS safety_simulationreport_guard();
"""
SQLITE_FORWARD = [
    "CREATE TRIGGER safety_simulationreport_before_first_cohort BEFORE INSERT ON safety_simulationreport "
    "WHEN EXISTS (SELECT 1 FROM cohorts_cohort c WHERE c.trial_id = NEW.trial_id) "
    f"BEGIN SELECT RAISE(ABORT, '{AFTER_FIRST_COHORT}'); END;",
    f"CREATE TRIGGER safety_simulationreport_no_update BEFORE UPDATE ON safety_simulationreport "
    f"BEGIN SELECT RAISE(ABORT, '{FROZEN}'); END;",
    f"CREATE TRIGGER safety_simulationreport_no_delete BEFORE DELETE ON safety_simulationreport "
    f"BEGIN SELECT RAISE(ABORT, '{FROZEN}'); END;",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS safety_simulationreport_before_first_cohort;",
    "DROP TRIGGER IF EXISTS safety_simulationreport_no_update;",
    "DROP TRIGGER IF EXISTS safety_simulationreport_no_delete;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"Add the simulation-report triggers for {vendor} before using it.")


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('safety', '0009_merge_20261202_0113'),
        ('trial', '0004_evaluability_and_3plus3_variant'),
        ('cohorts', '0009_roles_gilbert'),
        ('core', '0002_roles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HistoricalSimulationReport',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('protocol_version', models.CharField(max_length=40)),
                ('scenario', models.CharField(help_text="e.g. 'MTD at dose 2', or the sponsor's own scenario name", max_length=80)),
                ('design', models.JSONField(help_text="The protocol's design and its parameters when the report was run.")),
                ('true_rates', models.JSONField(help_text='True DLT probability per dose, dose 1 first.')),
                ('trials', models.PositiveIntegerField(verbose_name='simulated trials')),
                ('seed', models.PositiveBigIntegerField()),
                ('report', models.JSONField(help_text='Per dose: P(selected as MTD), mean treated, mean DLTs; P(stop early); E[n].')),
                ('decision_tables', models.JSONField(help_text="The design's decision tables, frozen with the protocol version.")),
                ('report_digest', models.CharField(help_text='SHA-256 of the canonical JSON of the report.', max_length=64)),
                ('reason', models.TextField(help_text='Why this report is accepted (e.g. the SAP section it answers).')),
                ('recorded_at', models.DateTimeField()),
                ('history_change_reason', models.TextField(blank=True, null=True)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('recorded_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('trial', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='trial.trial')),
            ],
            options={
                'verbose_name': 'historical simulation report',
                'verbose_name_plural': 'historical simulation reports',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='SimulationReport',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('protocol_version', models.CharField(max_length=40)),
                ('scenario', models.CharField(help_text="e.g. 'MTD at dose 2', or the sponsor's own scenario name", max_length=80)),
                ('design', models.JSONField(help_text="The protocol's design and its parameters when the report was run.")),
                ('true_rates', models.JSONField(help_text='True DLT probability per dose, dose 1 first.')),
                ('trials', models.PositiveIntegerField(verbose_name='simulated trials')),
                ('seed', models.PositiveBigIntegerField()),
                ('report', models.JSONField(help_text='Per dose: P(selected as MTD), mean treated, mean DLTs; P(stop early); E[n].')),
                ('decision_tables', models.JSONField(help_text="The design's decision tables, frozen with the protocol version.")),
                ('report_digest', models.CharField(help_text='SHA-256 of the canonical JSON of the report.', max_length=64)),
                ('reason', models.TextField(help_text='Why this report is accepted (e.g. the SAP section it answers).')),
                ('recorded_at', models.DateTimeField()),
                ('recorded_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('trial', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='simulation_reports', to='trial.trial')),
            ],
            options={
                'ordering': ['trial', 'protocol_version', 'recorded_at'],
                'constraints': [models.CheckConstraint(condition=models.Q(('trials__gte', 1), ('trials__lte', 10000)), name='simulationreport_trials_1_to_10000'), models.CheckConstraint(condition=models.Q(('reason', ''), _negated=True), name='simulationreport_reason_required'), models.CheckConstraint(condition=models.Q(('scenario', ''), _negated=True), name='simulationreport_scenario_named'), models.UniqueConstraint(fields=('trial', 'protocol_version', 'scenario'), name='simulationreport_one_per_scenario_and_version')],
            },
        ),
        migrations.RunPython(forward, reverse),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
