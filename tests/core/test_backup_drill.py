"""The backup drill: a pg_dump / pg_restore round trip keeps every row, every trigger and the signature chain."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from cohorts.models import Cohort
from safety import services
from safety.models import SafetyReview, SignatureChainHead, SignOff
from tests.safety import test_escalation_gate as gate
from tests.safety.test_escalation_gate import AFTER_WINDOWS, HOUR, PASSWORD, committee, frozen

reviewed = gate.reviewed  # the fixture: the low-dose cohort infused, its review open


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_restored_backup_has_every_row_and_trigger_and_an_intact_signature_chain(reviewed, tmp_path):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    with frozen(AFTER_WINDOWS + HOUR):
        for member in members:
            services.review_sign(review=reviewed, user=member, password=PASSWORD, meaning="approve")
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.EFFECTIVE and Cohort.objects.count() == 2
    out = StringIO()
    call_command("backup_drill", dump=str(tmp_path / "drill.dump"), stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is True, report
    assert report["count_mismatches"] == {} and report["triggers_missing_after_restore"] == []
    assert report["rows"] > 100 and report["triggers"] >= 9 and (tmp_path / "drill.dump").stat().st_size > 0
    restored = report["verify_signatures_restored"]
    assert (restored["intact"], restored["signatures_checked"], restored["problems"]) == (True, 3, [])
    assert (
        restored["heads"]
        == report["verify_signatures_source"]["heads"]
        == {"NCT06949137": {"count": 3, "head_digest": SignOff.objects.get(sequence=3).digest}}
    )
    assert SignatureChainHead.objects.count() == 3
    with connection.cursor() as cursor:  # dropped afterwards: nothing left behind on the server
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [report["scratch_database"]])
        assert cursor.fetchone()[0] == 0
