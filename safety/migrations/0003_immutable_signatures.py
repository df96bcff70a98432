"""Signatures are never changed or deleted, and a decided review is frozen: the database refuses it.

Part 11 §11.70 (signature/record linking) and §11.10(e) (audit trail): held by triggers, so neither
the admin, the API, a shell nor a raw query can edit a signature or a decided review.
"""

from django.db import migrations

SIGNATURE_MESSAGE = "Signatures cannot be changed or deleted (21 CFR Part 11)"
REVIEW_MESSAGE = "A decided safety review cannot change; a correction is a new review"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION safety_signoff_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '{SIGNATURE_MESSAGE}' USING ERRCODE = 'check_violation'; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_signoff_immutable BEFORE UPDATE OR DELETE ON safety_signoff
FOR EACH ROW EXECUTE FUNCTION safety_signoff_immutable();
CREATE OR REPLACE FUNCTION safety_review_frozen() RETURNS trigger AS $$
BEGIN
  IF OLD.state <> 'open' THEN RAISE EXCEPTION '{REVIEW_MESSAGE}' USING ERRCODE = 'check_violation'; END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER safety_review_frozen BEFORE UPDATE OR DELETE ON safety_safetyreview
FOR EACH ROW EXECUTE FUNCTION safety_review_frozen();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS safety_signoff_immutable ON safety_signoff;
DROP FUNCTION IF EXISTS safety_signoff_immutable();
DROP TRIGGER IF EXISTS safety_review_frozen ON safety_safetyreview;
DROP FUNCTION IF EXISTS safety_review_frozen();
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER safety_signoff_no_update BEFORE UPDATE ON safety_signoff "
    f"BEGIN SELECT RAISE(ABORT, '{SIGNATURE_MESSAGE}'); END;",
    f"CREATE TRIGGER safety_signoff_no_delete BEFORE DELETE ON safety_signoff "
    f"BEGIN SELECT RAISE(ABORT, '{SIGNATURE_MESSAGE}'); END;",
    f"CREATE TRIGGER safety_review_frozen BEFORE UPDATE ON safety_safetyreview WHEN OLD.state <> 'open' "
    f"BEGIN SELECT RAISE(ABORT, '{REVIEW_MESSAGE}'); END;",
    f"CREATE TRIGGER safety_review_frozen_delete BEFORE DELETE ON safety_safetyreview WHEN OLD.state <> 'open' "
    f"BEGIN SELECT RAISE(ABORT, '{REVIEW_MESSAGE}'); END;",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS safety_signoff_no_update;",
    "DROP TRIGGER IF EXISTS safety_signoff_no_delete;",
    "DROP TRIGGER IF EXISTS safety_review_frozen;",
    "DROP TRIGGER IF EXISTS safety_review_frozen_delete;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"Add the immutability triggers for {vendor} before using it.")


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("safety", "0002_roles")]

    operations = [migrations.RunPython(forward, reverse)]
