"""The data lock on the cohorts side: a closed cohort's infusions, DLT-window visits and deviations are
read-only; the visits after the DLT window and new deviations stay recordable; a data manager corrects."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from cohorts import services
from cohorts.models import FollowUpVisit, Participant, ProtocolDeviation
from core.errors import DomainError
from core.roles import DATA_MANAGER
from tests.cohorts.test_infusions_support import SH, T0, enrolled_cohort, frozen, infuse, nurse
from tests.factories import UserFactory, staff_users

pytestmark = pytest.mark.django_db
AFTER_CLOSE = dt.datetime(2027, 3, 1, 10, 0, tzinfo=SH)  # the M3 visit's window


@pytest.fixture
def closed(nct_trial):
    """The sentinel infused on 2026-11-25, a deviation recorded, then the cohort closed on 2026-12-30."""
    cohort, (participant,) = enrolled_cohort(nct_trial, size=1)
    infusion = infuse(participant, T0)
    with frozen(T0 + dt.timedelta(days=1)):
        deviation = services.deviation_record(
            participant=participant,
            category="other",
            severity="minor",
            description="Vital signs taken late",
            occurred_on=T0.date(),
            by=nurse(),
        )
    with frozen(dt.datetime(2026, 12, 30, 10, 0, tzinfo=SH)):
        _, investigator = staff_users()
        services.cohort_transition(
            cohort=cohort, transition=services.Transition.CLOSE, by=investigator, reason="Decision took effect"
        )
    return Participant.objects.get(pk=participant.pk), infusion, deviation


def _refused(call) -> str:
    with frozen(AFTER_CLOSE), pytest.raises(DomainError) as refused:
        call()
    return refused.value.code


def test_a_dlt_window_visit_of_a_closed_cohort_cannot_be_recorded_by_the_site(closed):
    participant, _, _ = closed
    d28 = participant.visits.get(code="D28")
    assert _refused(lambda: services.visit_complete(visit=d28, on=d28.target_date, by=nurse())) == "data_locked"
    assert _refused(lambda: services.visit_miss(visit=d28, reason="Not seen", by=nurse())) == "data_locked"
    d28.refresh_from_db()
    assert d28.status == FollowUpVisit.Status.SCHEDULED


def test_the_month_3_visit_after_the_dlt_window_is_still_recorded_by_the_site(closed):
    participant, _, _ = closed
    m3 = participant.visits.get(code="M3")
    with frozen(AFTER_CLOSE):
        services.visit_complete(visit=m3, on=m3.target_date, by=nurse())
    m3.refresh_from_db()
    assert m3.status == FollowUpVisit.Status.COMPLETED


def test_a_data_manager_records_a_missed_dlt_window_visit_with_a_reason_kept_in_the_history(closed):
    participant, _, _ = closed
    d28 = participant.visits.get(code="D28")
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    with frozen(AFTER_CLOSE):
        services.visit_miss(visit=d28, reason="Source: participant in hospital on day 28", by=manager)
    d28.refresh_from_db()
    assert d28.missed_reason == "Source: participant in hospital on day 28"
    latest = d28.history.latest()
    assert latest.history_user == manager
    assert latest.history_change_reason.startswith("Visit missed: Correction of locked data (Cohort 1")


def test_nothing_more_is_written_to_a_closed_cohorts_infusion(closed):
    _, infusion, _ = closed
    assert (
        _refused(
            lambda: services.vital_signs_record(
                infusion=infusion, timepoint="after", values={"heart_rate": 70}, by=nurse()
            )
        )
        == "data_locked"
    )
    assert not infusion.vitals.filter(timepoint="after", heart_rate=70).exists()


def test_a_deviation_recorded_before_the_close_is_locked_and_a_new_one_is_not(closed):
    participant, _, deviation = closed
    call = lambda: services.deviation_update(deviation=deviation, by=nurse(), reason="Assessed", severity="major")  # noqa: E731
    assert _refused(call) == "data_locked"
    with frozen(AFTER_CLOSE):
        late = services.deviation_record(
            participant=participant,
            category="other",
            severity="minor",
            description="Found at monitoring: consent page 3 unsigned",
            occurred_on=T0.date(),
            by=nurse(),
        )
        services.deviation_update(deviation=late, by=nurse(), reason="Assessed", corrective_action="Re-consented")
    late.refresh_from_db()
    assert late.corrective_action == "Re-consented"
    deviation.refresh_from_db()
    assert deviation.severity == ProtocolDeviation.Severity.MINOR


def test_the_admin_shows_a_closed_cohorts_infusion_and_visit_read_only_to_site_staff(closed, client):
    participant, infusion, deviation = closed
    client.force_login(nurse())
    pages = [
        reverse("admin:cohorts_infusion_change", args=[infusion.pk]),
        reverse("admin:cohorts_followupvisit_change", args=[participant.visits.get(code="D28").pk]),
        reverse("admin:cohorts_protocoldeviation_change", args=[deviation.pk]),
    ]
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200 and not page.context["has_change_permission"], url
    m3 = reverse("admin:cohorts_followupvisit_change", args=[participant.visits.get(code="M3").pk])
    assert client.get(m3).context["has_change_permission"]


def test_an_open_cohorts_infusion_takes_vital_signs_as_before(nct_trial):
    _, (participant,) = enrolled_cohort(nct_trial, size=1)
    infusion = infuse(participant, T0)
    with frozen(T0 + dt.timedelta(hours=2)):
        vitals = services.vital_signs_record(
            infusion=infusion, timepoint="after", values={"temperature_c": Decimal("36.8")}, by=nurse()
        )
    assert vitals.pk
