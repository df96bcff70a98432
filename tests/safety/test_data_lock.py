"""The data lock (issue 12, item 9): once a cohort closes, its clinical records are read-only, except for a
data manager's correction with a reason, which the history keeps."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from cohorts import services as cohort_services
from cohorts.models import Cohort
from core.errors import DomainError
from core.roles import DATA_MANAGER, INVESTIGATOR
from safety import services
from safety.models import AdverseEvent
from tests.factories import UserFactory, staff_users
from tests.safety.conftest import DAY0

pytestmark = pytest.mark.django_db


def _record(participant, **overrides) -> AdverseEvent:
    coordinator, _ = staff_users()
    values = {
        "verbatim_term": "Headache",
        "ctcae_term_text": "Headache",
        "onset_date": DAY0 + dt.timedelta(days=3),
        "grade": 1,
        "relationship": "unlikely",
        "expected": False,
        "outcome": "recovering",
        "site_aware_at": timezone.now() - dt.timedelta(hours=1),
    } | overrides
    return services.adverse_event_record(participant=participant, values=values, by=coordinator)


def _close(participant) -> Cohort:
    cohort = participant.enrollments.get().cohort
    _, investigator = staff_users()
    return cohort_services.cohort_transition(
        cohort=cohort, transition=cohort_services.Transition.CLOSE, by=investigator, reason="Decision took effect"
    )


def _later(hours: int = 2):
    return time_machine.travel(timezone.now() + dt.timedelta(hours=hours), tick=False)


def _follow_up(event, by, reason="Resolved at the day 28 visit"):
    return services.adverse_event_update(
        event=event,
        values={"outcome": "recovered", "resolution_date": DAY0 + dt.timedelta(days=6)},
        reason=reason,
        by=by,
    )


@pytest.fixture
def locked_event(infused):
    event = _record(infused)
    _close(infused)
    return event


@pytest.mark.parametrize("role", ["coordinator", "investigator"])
def test_an_edit_of_a_closed_cohorts_adverse_event_is_refused(locked_event, role):
    user = dict(zip(("coordinator", "investigator"), staff_users(), strict=True))[role]
    with _later(), pytest.raises(DomainError) as refused:
        _follow_up(locked_event, user)
    assert (refused.value.code, refused.value.status_code) == ("data_locked", 409)
    locked_event.refresh_from_db()
    assert locked_event.outcome == "recovering"


def test_a_data_managers_correction_with_a_reason_is_accepted_and_in_the_history(locked_event):
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    with _later():
        _follow_up(locked_event, manager, reason="Source document shows resolution on day 6")
    locked_event.refresh_from_db()
    assert locked_event.outcome == "recovered"
    latest = locked_event.history.latest()
    assert latest.history_user == manager
    assert latest.history_change_reason.startswith("Correction of locked data (Cohort 1")
    assert latest.history_change_reason.endswith("Source document shows resolution on day 6")


def test_a_data_managers_correction_without_a_reason_is_refused(locked_event):
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    with _later(), pytest.raises(DomainError) as refused:
        _follow_up(locked_event, manager, reason=" ")
    assert refused.value.code == "reason_required"


def test_a_data_manager_cannot_edit_the_adverse_event_of_a_cohort_still_open(infused):
    event = _record(infused)
    with pytest.raises(DomainError) as refused:
        _follow_up(event, UserFactory(username="dm", role=DATA_MANAGER))
    assert refused.value.code == "permission_denied"


def test_an_event_reported_after_the_close_is_recorded_and_followed_up_by_the_site(infused):
    _close(infused)
    coordinator, _ = staff_users()
    with _later():
        late = _record(infused, verbatim_term="Back pain", ctcae_term_text="Back pain")
    with _later(3):
        _follow_up(late, coordinator)
    late.refresh_from_db()
    assert late.outcome == "recovered"


def test_a_dlt_decision_on_a_closed_cohort_is_refused_for_the_investigator(infused):
    candidate = _record(infused, grade=3, relationship="possible", onset_date=DAY0 + dt.timedelta(days=10))
    assert candidate.dlt_status == AdverseEvent.DltStatus.CANDIDATE
    _close(infused)
    investigator = UserFactory(username="inv2", role=INVESTIGATOR)
    with _later(), pytest.raises(DomainError) as refused:
        services.dlt_decide(event=candidate, confirm=False, reason="Not related after review", by=investigator)
    assert refused.value.code == "data_locked"


def test_the_admin_shows_a_closed_cohorts_event_read_only_to_site_staff_and_editable_to_the_data_manager(
    locked_event, client
):
    coordinator, _ = staff_users()
    url = reverse("admin:safety_adverseevent_change", args=[locked_event.pk])
    client.force_login(coordinator)
    page = client.get(url)
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert client.post(url, {"outcome": "recovered", "change_reason": "x"}).status_code == 403
    client.force_login(UserFactory(username="dm", role=DATA_MANAGER))
    assert client.get(url).context["has_change_permission"]
