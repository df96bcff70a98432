"""Adverse events: bad input refused, DLT candidacy at its edges, reporting clocks, stopping rules."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from cohorts import services as cohort_services
from cohorts.models import Cohort, Participant
from core.errors import DomainError
from core.roles import INVESTIGATOR
from safety import services
from safety.models import AdverseEvent, ReportingClock, SafetyReview
from tests.factories import UserFactory, eligible_participant, staff_users
from tests.safety.conftest import DAY0, SHANGHAI

pytestmark = pytest.mark.django_db


def _values(**overrides) -> dict:
    return {
        "verbatim_term": "Fever after infusion",
        "ctcae_term_text": "Fever",
        "onset_date": DAY0 + dt.timedelta(days=10),
        "grade": 3,
        "relationship": "possible",
        "expected": False,
        "outcome": "recovering",
        "site_aware_at": timezone.now() - dt.timedelta(hours=1),
    } | overrides


def _record(participant, **overrides) -> AdverseEvent:
    coordinator, _ = staff_users()
    return services.adverse_event_record(participant=participant, values=_values(**overrides), by=coordinator)


def test_a_related_grade_3_event_on_day_10_is_a_dlt_candidate_for_the_investigator(infused):
    event = _record(infused)
    assert event.dlt_status == AdverseEvent.DltStatus.CANDIDATE
    assert "day 10" in event.dlt_reason


@pytest.mark.parametrize(
    ("grade", "relationship", "day", "candidate"),
    [
        (3, "possible", 28, True),  # last day of the window
        (3, "possible", 29, False),  # the day after
        (3, "possible", 0, True),  # infusion day
        (2, "definite", 10, False),  # grade 2 is below the threshold
        (3, "unlikely", 10, False),  # "unlikely" is below "possible"
        (4, "probable", 10, True),
    ],
)
def test_dlt_candidacy_at_its_edges(infused, grade, relationship, day, candidate):
    event = _record(infused, grade=grade, relationship=relationship, onset_date=DAY0 + dt.timedelta(days=day))
    assert (event.dlt_status == AdverseEvent.DltStatus.CANDIDATE) is candidate


def test_a_grade_3_infusion_reaction_is_a_candidate_whatever_the_relationship(infused):
    event = _record(infused, relationship="unlikely", infusion_reaction=True, onset_date=DAY0)
    assert event.dlt_status == AdverseEvent.DltStatus.CANDIDATE


def test_a_follow_up_raising_the_grade_turns_the_event_into_a_candidate_and_keeps_the_worst_grade(infused):
    coordinator, _ = staff_users()
    event = _record(infused, grade=2)
    assert event.dlt_status == AdverseEvent.DltStatus.NOT_CANDIDATE
    event = services.adverse_event_update(event=event, values={"grade": 3}, reason="Worsened", by=coordinator)
    assert (event.dlt_status, event.worst_grade) == (AdverseEvent.DltStatus.CANDIDATE, 3)
    event = services.adverse_event_update(
        event=event, values={"grade": 1, "outcome": "recovering"}, reason="Improving", by=coordinator
    )
    assert (event.grade, event.worst_grade) == (1, 3)
    assert event.history.count() == 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grade": 0}, "grade"),
        ({"grade": 6}, "grade"),
        ({"resolution_date": DAY0}, "resolution_date"),
        ({"serious": True}, "serious"),
        ({"grade": 5, "outcome": "recovered"}, "outcome"),
        ({"relationship": "maybe"}, "relationship"),
        ({"ctcae_term_text": ""}, "ctcae_term"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_saved(infused, overrides, field):
    with pytest.raises(DomainError) as refused:
        _record(infused, **overrides)
    assert refused.value.status_code == 400 and field in refused.value.fields
    assert AdverseEvent.objects.count() == 0


def test_onset_before_consent_is_refused(infused):
    with pytest.raises(DomainError) as refused:
        _record(infused, onset_date=dt.date(2020, 1, 1))
    assert refused.value.code == "onset_before_consent"
    assert AdverseEvent.objects.count() == 0


def test_a_serious_event_starts_the_24_hour_sponsor_clock_from_the_site_awareness_time(infused):
    aware = dt.datetime(2026, 11, 20, 23, 30, tzinfo=SHANGHAI)
    with time_machine.travel(dt.datetime(2026, 11, 21, 8, 0, tzinfo=SHANGHAI)):
        event = _record(
            infused, serious=True, sae_hospitalisation=True, relationship="not_related", site_aware_at=aware
        )
    clocks = {c.kind: c.due_at for c in event.clocks.all()}
    assert clocks == {"sponsor_24h": aware + dt.timedelta(hours=24)}


AWARE = dt.datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
SPONSOR_DUE = dt.datetime(2026, 11, 21, 9, 0, tzinfo=SHANGHAI)


def _end_of(day: dt.date) -> dt.datetime:
    """The last moment of a site calendar day: ICH E2A's deadlines are calendar days (day 0 = awareness)."""
    return dt.datetime.combine(day, dt.time.max, tzinfo=SHANGHAI)


DAY_7, DAY_15 = _end_of(dt.date(2026, 11, 27)), _end_of(dt.date(2026, 12, 5))


@pytest.mark.parametrize(
    ("criteria", "relationship", "expected", "clocks"),
    [
        # SUSAR: serious, related (possible or more), unexpected — 7 days if fatal/life-threatening, else 15.
        # A fatal or life-threatening SUSAR also gets its complete report 8 more calendar days later (day 15).
        ({"sae_life_threatening": True}, "probable", False,
         {"sponsor_24h": SPONSOR_DUE, "susar_7d": DAY_7, "susar_followup": DAY_15}),
        ({"sae_hospitalisation": True}, "probable", False, {"sponsor_24h": SPONSOR_DUE, "susar_15d": DAY_15}),
        ({"sae_hospitalisation": True}, "possible", False, {"sponsor_24h": SPONSOR_DUE, "susar_15d": DAY_15}),
        # Not a SUSAR: expected per the brochure, or related below "possible" — the sponsor clock only.
        ({"sae_life_threatening": True}, "probable", True, {"sponsor_24h": SPONSOR_DUE}),
        ({"sae_life_threatening": True}, "unlikely", False, {"sponsor_24h": SPONSOR_DUE}),
    ],
)  # fmt: skip
def test_a_serious_event_starts_exactly_the_clocks_its_relationship_and_expectedness_call_for(
    infused, criteria, relationship, expected, clocks
):
    with time_machine.travel(dt.datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)):
        event = _record(
            infused, serious=True, relationship=relationship, expected=expected, site_aware_at=AWARE, **criteria
        )
    assert {c.kind: c.due_at.astimezone(SHANGHAI) for c in event.clocks.all()} == clocks


def test_saving_a_serious_event_again_starts_no_second_clock(infused):
    coordinator, _ = staff_users()
    event = _record(infused, serious=True, sae_hospitalisation=True)
    started = sorted(event.clocks.values_list("kind", flat=True))
    assert started == ["sponsor_24h", "susar_15d"]
    services.adverse_event_update(
        event=event,
        values={"outcome": "recovered", "resolution_date": DAY0 + dt.timedelta(days=12)},
        reason="Resolved",
        by=coordinator,
    )
    assert sorted(ReportingClock.objects.filter(adverse_event=event).values_list("kind", flat=True)) == started


def test_an_overdue_clock_is_listed_until_it_is_reported(infused):
    from safety.selectors import overdue_clocks

    coordinator, _ = staff_users()
    event = _record(
        infused,
        serious=True,
        sae_hospitalisation=True,
        relationship="not_related",
        site_aware_at=timezone.now() - dt.timedelta(hours=30),
    )
    clock = event.clocks.get()
    assert list(overdue_clocks()) == [clock]
    services.clock_complete(clock=clock, done_at=timezone.now(), reported_to="Help Therapeutics PV", by=coordinator)
    assert list(overdue_clocks()) == []


def test_a_related_death_pauses_the_cohort_at_once_and_opens_an_unscheduled_review(infused, nct_trial):
    _record(infused, grade=5, outcome="fatal", serious=True, sae_death=True, relationship="possible")
    cohort = Cohort.objects.get()
    assert cohort.state == Cohort.State.PAUSED
    review = SafetyReview.objects.get()
    assert review.kind == SafetyReview.Kind.UNSCHEDULED and "grade 5" in review.reason
    coordinator, _ = staff_users()
    with pytest.raises(DomainError) as refused:
        cohort_services.enroll_participant(
            participant=eligible_participant(nct_trial, number="S050"), cohort=cohort, by=coordinator
        )
    assert refused.value.code == "cohort_paused"


def test_an_unrelated_death_does_not_trigger_the_stopping_rule(infused):
    _record(infused, grade=5, outcome="fatal", serious=True, sae_death=True, relationship="not_related")
    assert Cohort.objects.get().state != Cohort.State.PAUSED


def test_two_confirmed_dlts_at_one_dose_pause_the_cohort(infused, nct_trial):
    coordinator, investigator = staff_users()
    cohort = Cohort.objects.get()
    with time_machine.travel(dt.datetime(2026, 10, 21, 9, 0, tzinfo=SHANGHAI), tick=False):
        second = eligible_participant(nct_trial, number="S002")
        cohort_services.enroll_participant(participant=second, cohort=cohort, by=coordinator)
    Participant.objects.filter(pk=second.pk).update(dlt_window_start=DAY0, dlt_window_end=DAY0 + dt.timedelta(days=28))
    first_event = _record(infused)
    services.dlt_decide(event=first_event, confirm=True, reason="Grade 3 fever, related", by=investigator)
    assert Cohort.objects.get().state != Cohort.State.PAUSED
    second.refresh_from_db()
    services.dlt_decide(event=_record(second), confirm=True, reason="Same", by=investigator)
    assert Cohort.objects.get().state == Cohort.State.PAUSED


def test_only_an_investigator_confirms_a_dlt_and_needs_a_reason(infused):
    coordinator, investigator = staff_users()
    event = _record(infused)
    with pytest.raises(DomainError) as refused:
        services.dlt_decide(event=event, confirm=True, reason="x", by=coordinator)
    assert refused.value.code == "permission_denied"
    with pytest.raises(DomainError) as refused:
        services.dlt_decide(event=event, confirm=False, reason=" ", by=investigator)
    assert refused.value.code == "reason_required"
    rejected = services.dlt_decide(
        event=event,
        confirm=False,
        reason="Fever from a urinary infection",
        by=UserFactory(username="inv2", role=INVESTIGATOR),
    )
    assert rejected.dlt_status == AdverseEvent.DltStatus.REJECTED and rejected.dlt_decided_by.username == "inv2"


def test_an_onset_after_today_is_refused(infused):
    with pytest.raises(DomainError) as refused:
        _record(infused, onset_date=dt.date(2026, 12, 3))
    assert refused.value.code == "date_in_future"
    assert AdverseEvent.objects.count() == 0


def test_the_participant_page_shows_the_event_on_the_timeline_with_its_day_in_the_dlt_window(infused, client):
    from django.urls import reverse

    _record(infused)
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    page = client.get(reverse("admin:cohorts_participant_change", args=[infused.pk])).content.decode()
    assert "Adverse event: Fever, grade 3" in page
    assert "day 10 of the DLT window" in page and "DLT candidate" in page
