"""The escalation gate held by the database too (safety rule 1).

A cohort after the first can be inserted only while its trial has an open safety review whose
proposed decision opens a cohort (escalate / expand / de-escalate) at exactly this dose level, with
at least the quorum of approving signatures, one of them the chair's, and no rejection: that is,
only inside the transaction in which safety.services makes the decision effective. The first
cohort must be at the lowest dose level, and no cohort's trial, sequence or dose level can change.
A shell, a raw query or a future code path that skips the service is refused by the database.
"""

from django.db import migrations

MESSAGE = "A later cohort opens only through an effective escalation decision of the safety review committee"
FROZEN = "The trial, sequence and dose level of a cohort cannot change"

# Both vendors share the condition; NEW refers to the cohort being inserted.
ALLOWED = """
(
  (NEW.sequence = 1 AND NEW.dose_level_id = (
      SELECT d.id FROM trial_doselevel d WHERE d.trial_id = NEW.trial_id ORDER BY d.level LIMIT 1))
  OR EXISTS (
    SELECT 1
    FROM safety_safetyreview r
    JOIN cohorts_cohort reviewed ON reviewed.id = r.cohort_id
    JOIN trial_doselevel reviewed_dose ON reviewed_dose.id = reviewed.dose_level_id
    JOIN trial_doselevel new_dose ON new_dose.id = NEW.dose_level_id
    JOIN trial_trial t ON t.id = r.trial_id
    WHERE r.trial_id = NEW.trial_id
      AND r.state = 'open'
      AND r.decision IN ('escalate', 'expand', 'deescalate')
      AND new_dose.trial_id = NEW.trial_id
      AND new_dose.level = reviewed_dose.level + CASE r.decision
            WHEN 'escalate' THEN 1 WHEN 'expand' THEN 0 ELSE -1 END
      AND NOT EXISTS (SELECT 1 FROM safety_signoff s WHERE s.review_id = r.id AND s.meaning = 'reject')
      AND (SELECT COUNT(*) FROM safety_signoff s WHERE s.review_id = r.id AND s.meaning = 'approve')
          >= t.review_quorum
      AND EXISTS (
        SELECT 1 FROM safety_signoff s
        JOIN auth_user_user_permissions up ON up.user_id = s.signer_id
        JOIN auth_permission p ON p.id = up.permission_id
        JOIN django_content_type ct ON ct.id = p.content_type_id
        WHERE s.review_id = r.id AND s.meaning = 'approve'
          AND p.codename = 'chair_review' AND ct.app_label = 'safety')
  )
)
"""

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION cohorts_cohort_gate() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.trial_id <> OLD.trial_id OR NEW.sequence <> OLD.sequence OR NEW.dose_level_id <> OLD.dose_level_id THEN
      RAISE EXCEPTION '{FROZEN}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NOT {ALLOWED} THEN
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER cohorts_cohort_gate BEFORE INSERT OR UPDATE ON cohorts_cohort
FOR EACH ROW EXECUTE FUNCTION cohorts_cohort_gate();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS cohorts_cohort_gate ON cohorts_cohort;
DROP FUNCTION IF EXISTS cohorts_cohort_gate();
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER cohorts_cohort_gate BEFORE INSERT ON cohorts_cohort WHEN NOT {ALLOWED} "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;",
    "CREATE TRIGGER cohorts_cohort_frozen BEFORE UPDATE ON cohorts_cohort WHEN NEW.trial_id <> OLD.trial_id "
    "OR NEW.sequence <> OLD.sequence OR NEW.dose_level_id <> OLD.dose_level_id "
    f"BEGIN SELECT RAISE(ABORT, '{FROZEN}'); END;",
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS cohorts_cohort_gate;", "DROP TRIGGER IF EXISTS cohorts_cohort_frozen;"]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"Add the cohort gate trigger for {vendor} before using it.")


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("safety", "0003_immutable_signatures"), ("cohorts", "0003_dlt_window")]

    operations = [migrations.RunPython(forward, reverse)]
