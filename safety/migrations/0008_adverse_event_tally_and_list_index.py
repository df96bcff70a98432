"""The adverse-event tally (kept by triggers) and the index of the AE list's order.

``safety_adverseeventtally`` counts each participant's events per (worst grade, serious, DLT status). The
triggers below keep it in the transaction of every insert, update and delete of ``safety_adverseevent``,
whatever wrote it (a service, ``bulk_create``, raw SQL); the rows already there are counted once here.
On SQLite a migration that rebuilds ``safety_adverseevent`` drops these triggers: reinstall them after it
(``reinstall`` below), as 0006 does for the other triggers.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

KEY = "participant_id, worst_grade, serious, dlt_status"
MATCH = "participant_id = {r}.participant_id AND worst_grade = {r}.worst_grade AND serious = {r}.serious "
MATCH += "AND dlt_status = {r}.dlt_status"
TABLE = "safety_adverseeventtally"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION safety_ae_tally() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE {TABLE} SET events = events - 1 WHERE {MATCH.format(r="OLD")};
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO {TABLE} ({KEY}, events) VALUES (NEW.participant_id, NEW.worst_grade, NEW.serious, NEW.dlt_status, 1)
    ON CONFLICT ({KEY}) DO UPDATE SET events = {TABLE}.events + 1;
  END IF;
  RETURN NULL;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_ae_tally
AFTER INSERT OR UPDATE OF participant_id, worst_grade, serious, dlt_status OR DELETE ON safety_adverseevent
FOR EACH ROW EXECUTE FUNCTION safety_ae_tally();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS safety_ae_tally ON safety_adverseevent;
DROP FUNCTION IF EXISTS safety_ae_tally();
"""
_ADD = (
    f"INSERT OR IGNORE INTO {TABLE} ({KEY}, events) VALUES (NEW.participant_id, NEW.worst_grade, NEW.serious, "
    f"NEW.dlt_status, 0); UPDATE {TABLE} SET events = events + 1 WHERE {MATCH.format(r='NEW')};"
)
_REMOVE = f"UPDATE {TABLE} SET events = events - 1 WHERE {MATCH.format(r='OLD')};"
SQLITE_FORWARD = [
    f"CREATE TRIGGER safety_ae_tally_insert AFTER INSERT ON safety_adverseevent BEGIN {_ADD} END;",
    "CREATE TRIGGER safety_ae_tally_update AFTER UPDATE OF participant_id, worst_grade, serious, dlt_status "
    f"ON safety_adverseevent BEGIN {_REMOVE} {_ADD} END;",
    f"CREATE TRIGGER safety_ae_tally_delete AFTER DELETE ON safety_adverseevent BEGIN {_REMOVE} END;",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS safety_ae_tally_insert;",
    "DROP TRIGGER IF EXISTS safety_ae_tally_update;",
    "DROP TRIGGER IF EXISTS safety_ae_tally_delete;",
]
BACKFILL = (
    f"INSERT INTO {TABLE} ({KEY}, events) SELECT {KEY}, COUNT(*) FROM safety_adverseevent "
    "GROUP BY participant_id, worst_grade, serious, dlt_status"
)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in [POSTGRES_REVERSE] if vendor == "postgresql" else SQLITE_REVERSE:
        schema_editor.execute(statement)


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"Add the adverse-event tally triggers for {vendor} before using it.")
    reverse(apps, schema_editor)
    for statement in [POSTGRES_FORWARD] if vendor == "postgresql" else SQLITE_FORWARD:
        schema_editor.execute(statement)


def reinstall(apps, schema_editor):
    """Drop and create the triggers again (after a SQLite table rebuild); counts stay as they are."""
    forward(apps, schema_editor)


def backfill(apps, schema_editor):
    schema_editor.execute(f"DELETE FROM {TABLE}")
    schema_editor.execute(BACKFILL)


class Migration(migrations.Migration):

    dependencies = [
        ('cohorts', '0009_roles_gilbert'),
        ('safety', '0007_deaths_are_serious_and_mtd_selection'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AdverseEventTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('worst_grade', models.PositiveSmallIntegerField()),
                ('serious', models.BooleanField()),
                ('dlt_status', models.CharField(max_length=16)),
                ('events', models.IntegerField(default=0)),
            ],
        ),
        migrations.AddIndex(
            model_name='adverseevent',
            index=models.Index(models.OrderBy(models.F('onset_date'), descending=True), models.OrderBy(models.F('id'), descending=True), name='ae_onset_desc'),
        ),
        migrations.AddField(
            model_name='adverseeventtally',
            name='participant',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='cohorts.participant'),
        ),
        migrations.AddConstraint(
            model_name='adverseeventtally',
            constraint=models.UniqueConstraint(fields=('participant', 'worst_grade', 'serious', 'dlt_status'), name='ae_tally_one_row_per_key'),
        ),
        migrations.AddConstraint(
            model_name='adverseeventtally',
            constraint=models.CheckConstraint(condition=models.Q(('events__gte', 0)), name='ae_tally_not_negative'),
        ),
        migrations.RunPython(forward, reverse),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
