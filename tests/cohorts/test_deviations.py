"""Protocol deviations found by site staff: recorded, assessed, closed with a corrective action."""

import datetime as dt

import pytest

from cohorts import services
from cohorts.models import ProtocolDeviation
from core.errors import DomainError
from core.roles import SPONSOR
from tests.cohorts.test_infusions_support import (
    SH,
    T0,
    enrolled_cohort,
    frozen,
    nurse,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def participant(nct_trial):
    _, participants = enrolled_cohort(nct_trial, size=1)
    return participants[0]


def _record(participant, **overrides) -> ProtocolDeviation:
    values = {
        "participant": participant,
        "category": "procedure",
        "severity": "minor",
        "description": "Pre-infusion ECG not done",
        "occurred_on": dt.date(2026, 11, 25),
        "by": nurse(),
    }
    with frozen(T0):
        return services.deviation_record(**(values | overrides))


def test_staff_record_a_deviation_and_are_kept_as_its_detector(participant):
    deviation = _record(participant)
    assert (deviation.source, deviation.detected_by, deviation.status) == ("staff", nurse(), "open")
    assert deviation.trial_id == participant.trial_id
    assert deviation.history.latest().history_user == nurse()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"description": ""}, "invalid"),
        ({"description": "ECG\x00"}, "invalid"),
        ({"description": "x" * 5001}, "invalid"),
        ({"category": "typo"}, "invalid"),
        ({"severity": "critical"}, "invalid"),
        ({"occurred_on": "2026-11-25"}, "invalid"),
        ({"occurred_on": dt.date(2026, 11, 26)}, "date_in_future"),
    ],
)
def test_a_malformed_deviation_is_refused_and_nothing_is_saved(participant, overrides, code):
    with pytest.raises(DomainError) as refused:
        _record(participant, **overrides)
    assert refused.value.code == code
    assert ProtocolDeviation.objects.count() == 0


def test_a_sponsor_cannot_record_a_deviation(participant):
    with pytest.raises(DomainError) as refused:
        _record(participant, by=UserFactory(username="sponsor", role=SPONSOR))
    assert refused.value.code == "permission_denied"


def test_closing_a_deviation_needs_a_corrective_action_and_then_it_is_final(participant):
    deviation = _record(participant)
    with frozen(T0 + dt.timedelta(days=1)):
        with pytest.raises(DomainError) as refused:
            services.deviation_update(deviation=deviation, by=nurse(), reason="Done", close=True)
        assert refused.value.code == "corrective_action_required"
        with pytest.raises(DomainError) as refused:
            services.deviation_update(deviation=deviation, by=nurse(), reason="", severity="major")
        assert refused.value.code == "reason_required"
        services.deviation_update(
            deviation=deviation,
            by=nurse(),
            reason="Investigator assessment",
            severity="major",
            corrective_action="ECG checklist added to the infusion kit",
            close=True,
        )
        deviation.refresh_from_db()
        assert (deviation.status, deviation.severity, deviation.closed_by) == ("closed", "major", nurse())
        assert deviation.closed_at == dt.datetime(2026, 11, 26, 8, 0, tzinfo=SH)
        with pytest.raises(DomainError) as refused:
            services.deviation_update(deviation=deviation, by=nurse(), reason="Typo", description="Other")
        assert refused.value.code == "deviation_closed"
    assert deviation.history.latest().history_change_reason == "Investigator assessment"
