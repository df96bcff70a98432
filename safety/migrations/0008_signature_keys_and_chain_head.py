"""Keyed signature digests and an append-only chain head per trial, held by triggers (21 CFR 11.10(e), 11.70).

- ``SignOff.key_id``: the HMAC key a digest was made with. Existing rows were signed with an unkeyed SHA-256;
  they get ``sha256-legacy`` and stay verifiable as such (verify_signatures counts them as legacy). They are not
  re-signed: a digest made now would attest the migration, not the signer. The first keyed signature after them
  binds their last digest into its HMAC, so from then on they cannot be rewritten unseen.
- ``SignatureChainHead``: one row per signature (trial, count, head digest), backfilled here from the existing
  signatures, then written only by the trigger ``safety_signoff_advance_head`` after each insert into
  ``safety_signoff`` (the same statement, so the same transaction).
- Triggers (PostgreSQL / SQLite):
  - ``safety_signoff_links_to_head`` (before insert): a new signature is keyed (not the legacy id) and links to
    the trial's current head: ``sequence`` = head count + 1 and ``previous_digest`` = head digest. A forged
    insert that does not continue the chain is refused; one that does still needs the key for its HMAC.
  - ``safety_chainhead_check`` (before insert on the head): only the next count, for the signature it names.
  - ``safety_chainhead_immutable`` (before update or delete on the head): refused.
  - ``safety_signoff_no_truncate``, ``safety_chainhead_no_truncate`` (PostgreSQL, before truncate, per
    statement): refused while the table holds rows (an empty table's truncate, as a test flush, changes nothing).
- The triggers of 0003 and 0004 are dropped first and reinstalled last: SQLite rebuilds safety_signoff to add
  the column. ``reinstall`` here reinstalls all of them: a later migration that rebuilds one of these tables
  calls it.
"""

import importlib

import django.db.models.deletion
from django.db import migrations, models

from core.roles import sync_roles

immutable = importlib.import_module("safety.migrations.0003_immutable_signatures")
gate = importlib.import_module("safety.migrations.0004_cohort_gate_trigger")

LEGACY_KEY_ID = "sha256-legacy"
LINK_MESSAGE = "A new signature must be keyed and continue the signature chain of its trial from the head (21 CFR Part 11)"
HEAD_MESSAGE = "The signature chain head is written only with its signature and never changed (21 CFR Part 11)"
TRUNCATE_MESSAGE = "Signatures and the signature chain cannot be truncated (21 CFR Part 11)"

# The trial's current head: its row with the highest count (none: count 0, digest '').
HEAD_COUNT = "COALESCE((SELECT MAX(h.count) FROM safety_signaturechainhead h WHERE h.trial_id = NEW.trial_id), 0)"
HEAD_DIGEST = (
    "COALESCE((SELECT h.head_digest FROM safety_signaturechainhead h WHERE h.trial_id = NEW.trial_id "
    "ORDER BY h.count DESC LIMIT 1), '')"
)
NOT_LINKED = f"(NEW.key_id = '{LEGACY_KEY_ID}' OR NEW.sequence <> {HEAD_COUNT} + 1 OR NEW.previous_digest <> {HEAD_DIGEST})"
HEAD_NOT_NEXT = (
    f"(NEW.count <> {HEAD_COUNT} + 1 OR NOT EXISTS (SELECT 1 FROM safety_signoff s WHERE s.id = NEW.signature_id "
    "AND s.trial_id = NEW.trial_id AND s.sequence = NEW.count AND s.digest = NEW.head_digest))"
)

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION safety_signoff_links_to_head() RETURNS trigger AS $$
BEGIN
  IF {NOT_LINKED} THEN RAISE EXCEPTION '{LINK_MESSAGE}' USING ERRCODE = 'check_violation'; END IF;
  RETURN NEW;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_signoff_links_to_head BEFORE INSERT ON safety_signoff
FOR EACH ROW EXECUTE FUNCTION safety_signoff_links_to_head();
CREATE OR REPLACE FUNCTION safety_signoff_advance_head() RETURNS trigger AS $$
BEGIN
  INSERT INTO safety_signaturechainhead (trial_id, count, head_digest, signature_id)
  VALUES (NEW.trial_id, NEW.sequence, NEW.digest, NEW.id);
  RETURN NULL;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_signoff_advance_head AFTER INSERT ON safety_signoff
FOR EACH ROW EXECUTE FUNCTION safety_signoff_advance_head();
CREATE OR REPLACE FUNCTION safety_chainhead_check() RETURNS trigger AS $$
BEGIN
  IF {HEAD_NOT_NEXT} THEN RAISE EXCEPTION '{HEAD_MESSAGE}' USING ERRCODE = 'check_violation'; END IF;
  RETURN NEW;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_chainhead_check BEFORE INSERT ON safety_signaturechainhead
FOR EACH ROW EXECUTE FUNCTION safety_chainhead_check();
CREATE OR REPLACE FUNCTION safety_chainhead_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '{HEAD_MESSAGE}' USING ERRCODE = 'check_violation'; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_chainhead_immutable BEFORE UPDATE OR DELETE ON safety_signaturechainhead
FOR EACH ROW EXECUTE FUNCTION safety_chainhead_immutable();
CREATE OR REPLACE FUNCTION safety_chain_no_truncate() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM safety_signoff) OR EXISTS (SELECT 1 FROM safety_signaturechainhead) THEN
    RAISE EXCEPTION '{TRUNCATE_MESSAGE}' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_signoff_no_truncate BEFORE TRUNCATE ON safety_signoff
FOR EACH STATEMENT EXECUTE FUNCTION safety_chain_no_truncate();
CREATE TRIGGER safety_chainhead_no_truncate BEFORE TRUNCATE ON safety_signaturechainhead
FOR EACH STATEMENT EXECUTE FUNCTION safety_chain_no_truncate();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS safety_signoff_links_to_head ON safety_signoff;
DROP TRIGGER IF EXISTS safety_signoff_advance_head ON safety_signoff;
DROP TRIGGER IF EXISTS safety_signoff_no_truncate ON safety_signoff;
DROP TRIGGER IF EXISTS safety_chainhead_check ON safety_signaturechainhead;
DROP TRIGGER IF EXISTS safety_chainhead_immutable ON safety_signaturechainhead;
DROP TRIGGER IF EXISTS safety_chainhead_no_truncate ON safety_signaturechainhead;
DROP FUNCTION IF EXISTS safety_signoff_links_to_head();
DROP FUNCTION IF EXISTS safety_signoff_advance_head();
DROP FUNCTION IF EXISTS safety_chainhead_check();
DROP FUNCTION IF EXISTS safety_chainhead_immutable();
DROP FUNCTION IF EXISTS safety_chain_no_truncate();
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER safety_signoff_links_to_head BEFORE INSERT ON safety_signoff WHEN {NOT_LINKED} "
    f"BEGIN SELECT RAISE(ABORT, '{LINK_MESSAGE}'); END;",
    "CREATE TRIGGER safety_signoff_advance_head AFTER INSERT ON safety_signoff BEGIN "
    "INSERT INTO safety_signaturechainhead (trial_id, count, head_digest, signature_id) "
    "VALUES (NEW.trial_id, NEW.sequence, NEW.digest, NEW.id); END;",
    f"CREATE TRIGGER safety_chainhead_check BEFORE INSERT ON safety_signaturechainhead WHEN {HEAD_NOT_NEXT} "
    f"BEGIN SELECT RAISE(ABORT, '{HEAD_MESSAGE}'); END;",
    f"CREATE TRIGGER safety_chainhead_no_update BEFORE UPDATE ON safety_signaturechainhead "
    f"BEGIN SELECT RAISE(ABORT, '{HEAD_MESSAGE}'); END;",
    f"CREATE TRIGGER safety_chainhead_no_delete BEFORE DELETE ON safety_signaturechainhead "
    f"BEGIN SELECT RAISE(ABORT, '{HEAD_MESSAGE}'); END;",
]  # SQLite has no TRUNCATE: its "DELETE FROM" without WHERE fires the row triggers above and 0003's
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {name};"
    for name in (
        "safety_signoff_links_to_head",
        "safety_signoff_advance_head",
        "safety_chainhead_check",
        "safety_chainhead_no_update",
        "safety_chainhead_no_delete",
    )
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"Add the signature-chain triggers for {vendor} before using it.")


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    reverse(apps, schema_editor)
    for module in (gate, immutable):
        module.reverse(apps, schema_editor)  # DROP ... IF EXISTS


def reinstall(apps, schema_editor):
    """Every trigger on safety_signoff, safety_safetyreview, cohorts_cohort and the chain head, anew."""
    drop_triggers(apps, schema_editor)
    for module in (immutable, gate):
        module.forward(apps, schema_editor)
    forward(apps, schema_editor)


def reinstall_previous(apps, schema_editor):
    """Migrating back: the triggers of 0003 and 0004 only (this migration's are gone with its table)."""
    drop_triggers(apps, schema_editor)
    for module in (immutable, gate):
        module.forward(apps, schema_editor)


def backfill_heads(apps, schema_editor):
    """The head after each existing signature, in each trial's sequence order (before the triggers exist)."""
    SignOff = apps.get_model("safety", "SignOff")
    Head = apps.get_model("safety", "SignatureChainHead")
    Head.objects.bulk_create(
        Head(trial_id=s.trial_id, count=s.sequence, head_digest=s.digest, signature_id=s.pk)
        for s in SignOff.objects.order_by("trial_id", "sequence")
    )


class Migration(migrations.Migration):

    dependencies = [
        ('safety', '0007_deaths_are_serious_and_mtd_selection'),
        ('trial', '0004_evaluability_and_3plus3_variant'),
    ]

    operations = [
        migrations.RunPython(drop_triggers, reinstall_previous),
        migrations.AddField(
            model_name='signoff',
            name='key_id',
            field=models.CharField(default=LEGACY_KEY_ID, help_text='The id of the HMAC key (settings.SIGNATURE_KEYS) the digest was made with.', max_length=32),
            preserve_default=False,
        ),
        migrations.CreateModel(
            name='IntegrityAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('signatures', 'Signature chain (verify_signatures)')], max_length=16)),
                ('detected_on', models.DateField(help_text='UTC date of the check')),
                ('detected_at', models.DateTimeField()),
                ('signatures_checked', models.PositiveIntegerField()),
                ('problem_count', models.PositiveIntegerField()),
                ('problems', models.JSONField(help_text='The structured problems verify_signatures reported')),
            ],
            options={
                'ordering': ['-detected_at'],
                'constraints': [models.UniqueConstraint(fields=('kind', 'detected_on'), name='integrityalert_one_per_kind_per_day'), models.CheckConstraint(condition=models.Q(('problem_count__gte', 1)), name='integrityalert_has_problems')],
            },
        ),
        migrations.CreateModel(
            name='SignatureChainHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('count', models.PositiveIntegerField(help_text='Signatures of the trial up to and including this one')),
                ('head_digest', models.CharField(max_length=64)),
                ('signature', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='safety.signoff')),
                ('trial', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='trial.trial')),
            ],
            options={
                'ordering': ['trial', 'count'],
                'constraints': [models.UniqueConstraint(fields=('trial', 'count'), name='chainhead_unique_count_per_trial')],
            },
        ),
        migrations.RunPython(backfill_heads, migrations.RunPython.noop),
        migrations.RunPython(reinstall, drop_triggers),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
