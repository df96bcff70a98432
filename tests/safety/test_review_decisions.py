"""What a safety review recommends and records, driven through the services as the site and the
committee would: the 3+3 variant of the protocol, the MTD from the design's own selection (always a
treated dose), evaluability, and a committee that sees every serious event, DLT decision and
overdue visit before a decision can take effect.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from cohorts import services as cohort_services
from cohorts.models import Cohort, FollowUpVisit
from core.errors import DomainError
from safety import services
from safety.models import AdverseEvent, SafetyReview
from tests.cohorts.test_infusions_support import DAY, HOUR, T0, frozen, infuse, record_visits, start
from tests.factories import eligible_participant, staff_users
from tests.safety.test_escalation_gate import AFTER_WINDOWS, PASSWORD, committee, reviewed  # noqa: F401

pytestmark = pytest.mark.django_db
WINDOWS = 40 * DAY  # from a cohort's first infusion to the day after its last DLT window


def _dlt(participant, *, on: dt.datetime):
    """A grade 3 event, possibly related, two days into the participant's DLT window."""
    coordinator, _ = staff_users()
    participant.refresh_from_db()
    with frozen(on):
        return services.adverse_event_record(
            participant=participant,
            by=coordinator,
            values={
                "verbatim_term": "Febrile neutropenia",
                "ctcae_term_text": "Febrile neutropenia",
                "grade": 3,
                "relationship": "possible",
                "onset_date": participant.dlt_window_start + dt.timedelta(days=2),
                "outcome": "recovered",
                "resolution_date": participant.dlt_window_start + dt.timedelta(days=4),
            },
        )


def run_cohort(cohort: Cohort, pattern: str, begin: dt.datetime) -> SafetyReview:
    """Enroll, infuse (sentinel first, then the protocol's waits), follow up and review one cohort.

    ``pattern`` is one letter per participant (the sentinel first, who must be N): T participants have a
    DLT that an investigator confirms once the windows are over. Returns the review that opens: the
    unscheduled one of the stopping rule, or the scheduled one.
    """
    coordinator, investigator = staff_users()
    trial = cohort.trial
    with frozen(begin - HOUR):
        people = []
        for n in range(len(pattern)):
            person = eligible_participant(trial, number=f"C{cohort.sequence}P{n + 1}")
            cohort_services.enroll_participant(participant=person, cohort=cohort, by=coordinator)
            people.append(person)
    for person, offset in zip(people, (0 * DAY, 8 * DAY, 9 * DAY + 2 * HOUR), strict=False):
        infuse(person, begin + offset)
    events = [_dlt(p, on=begin + 14 * DAY) for p, letter in zip(people, pattern, strict=True) if letter == "T"]
    record_visits(people, until=(begin + WINDOWS).date())
    with frozen(begin + WINDOWS):
        for event in events:
            services.dlt_decide(event=event, confirm=True, reason="Grade 3, possibly related", by=investigator)
        opened = SafetyReview.objects.filter(cohort=cohort, state=SafetyReview.State.OPEN).first()
        if opened is None:
            (opened,) = services.reviews_open_due()
    return opened


def decide(review: SafetyReview, members, decision: str, at: dt.datetime, **kwargs) -> SafetyReview:
    with frozen(at):
        services.review_propose(review=review, decision=decision, by=members[0], **kwargs)
    with frozen(at + HOUR):
        for member in members:
            services.review_sign(review=review, user=member, password=PASSWORD, meaning="approve")
    review.refresh_from_db()
    assert review.state == SafetyReview.State.EFFECTIVE
    return review


def test_after_1nnn_2ntt_the_protocol_confirms_dose_1_on_six_and_then_records_it_as_the_mtd(nct_trial):
    assert nct_trial.three_plus_three_variant == "confirm_on_six"
    members = committee()
    _, investigator = staff_users()
    with frozen(T0 - 2 * HOUR):
        low = cohort_services.cohort_open_first(trial=nct_trial, by=investigator)
    first = decide(run_cohort(low, "NNN", T0), members, "escalate", T0 + WINDOWS)

    second = run_cohort(first.resulting_cohort, "NTT", T0 + 41 * DAY)
    assert second.kind == SafetyReview.Kind.UNSCHEDULED  # two DLTs at dose 2: the stopping rule
    assert second.snapshot["outcomes"] == "1NNN 2NTT"
    assert second.snapshot["recommendations"]["3+3"] == {
        "recommended_dose": 1,
        "continue": True,
        "reason": second.snapshot["recommendations"]["3+3"]["reason"],
    }
    assert services.protocol_recommendation(second) == "deescalate"  # not "MTD = dose 1 on 0 of 3"
    assert second.snapshot["mtd_selection"]["3+3"]["status"] == "not_determined"
    with frozen(T0 + 81 * DAY), pytest.raises(DomainError) as refused:
        services.review_propose(review=second, decision="mtd", mtd_level=3, rationale="x", by=members[0])
    assert refused.value.code == "mtd_not_treated"
    second = decide(second, members, "deescalate", T0 + 81 * DAY)
    assert second.resulting_cohort.dose_level.level == 1

    third = run_cohort(second.resulting_cohort, "NNN", T0 + 82 * DAY)
    assert third.snapshot["outcomes"] == "1NNN 2NTT 1NNN"
    assert services.protocol_recommendation(third) == "mtd"
    third = decide(third, members, "mtd", T0 + 122 * DAY)
    assert third.mtd_dose_level.level == 1 and not third.mtd_departs_from_rule
    assert third.mtd_statement.startswith("MTD: dose 1 (Low")
    nct_trial.refresh_from_db()
    assert nct_trial.status == "completed"


def test_a_trial_that_clears_the_top_dose_expands_it_to_six_and_records_mtd_not_reached(nct_trial):
    members = committee()
    _, investigator = staff_users()
    with frozen(T0 - 2 * HOUR):
        cohort = cohort_services.cohort_open_first(trial=nct_trial, by=investigator)
    begin = T0
    for decision in ("escalate", "escalate"):
        review = decide(run_cohort(cohort, "NNN", begin), members, decision, begin + WINDOWS)
        cohort, begin = review.resulting_cohort, begin + 41 * DAY
    top = run_cohort(cohort, "NNN", begin)
    assert top.snapshot["outcomes"] == "1NNN 2NNN 3NNN"
    assert services.protocol_recommendation(top) == "expand"  # 0 of 3 at the top dose: confirm on 6 first
    top = decide(top, members, "expand", begin + WINDOWS)
    assert (top.resulting_cohort.dose_level.level, top.resulting_cohort.sequence) == (3, 4)

    last = run_cohort(top.resulting_cohort, "NNN", begin + 41 * DAY)
    assert last.snapshot["outcomes"] == "1NNN 2NNN 3NNN 3NNN"
    assert services.protocol_recommendation(last) == "mtd"
    last = decide(last, members, "mtd", begin + 41 * DAY + WINDOWS)
    assert last.mtd_dose_level is None
    assert last.mtd_statement == "MTD not reached; highest dose cleared: 3 (High, 2.4×10⁸ cells)"


def test_a_committee_cannot_record_an_untreated_dose_as_the_mtd_after_1nnn(reviewed):  # noqa: F811
    members = committee()
    assert services.protocol_recommendation(reviewed) == "escalate"
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=reviewed, decision="mtd", mtd_level=2, rationale="Sponsor", by=members[0])
    assert refused.value.code == "mtd_not_treated"
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=reviewed, decision="mtd", by=members[0])
    assert refused.value.code == "rationale_required"


def test_without_a_declared_dose_the_mtd_after_1nnn_is_recorded_as_not_reached(reviewed):  # noqa: F811
    review = decide(reviewed, committee(), "mtd", AFTER_WINDOWS, rationale="Sponsor ends the programme")
    assert review.mtd_dose_level is None
    assert review.mtd_statement.startswith("MTD not reached; highest dose cleared: 1 (Low")


def test_a_committee_may_declare_a_treated_dose_with_a_rationale_and_the_review_shows_the_departure(
    reviewed,  # noqa: F811
):
    review = decide(
        reviewed, committee(), "mtd", AFTER_WINDOWS, mtd_level=1, rationale="Efficacy reached at the low dose"
    )
    assert (review.mtd_dose_level.level, review.mtd_departs_from_rule) == (1, True)
    assert "departing from the 3+3 selection (MTD not reached" in review.mtd_statement
    assert {s.mtd_level for s in review.signatures.all()} == {1}  # the declared dose is what they signed
    assert services.verify_signatures() == []


def test_a_declared_mtd_only_goes_with_the_mtd_decision(reviewed):  # noqa: F811
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=reviewed, decision="escalate", mtd_level=1, by=committee()[0])
    assert refused.value.code == "mtd_level_without_mtd"


# --- evaluability -------------------------------------------------------------------------------------------------


def _cohort_with_one_stopped_early(trial, *, cells: int, dlt: bool):
    coordinator, investigator = staff_users()
    with frozen(T0 - 2 * HOUR):
        cohort = cohort_services.cohort_open_first(trial=trial, by=investigator)
        people = []
        for n in range(3):
            person = eligible_participant(trial, number=f"E{n + 1}")
            cohort_services.enroll_participant(participant=person, cohort=cohort, by=coordinator)
            people.append(person)
    infuse(people[0], T0)
    infusion = start(people[1], T0 + 8 * DAY)
    with frozen(T0 + 8 * DAY + 30 * HOUR / 60):
        cohort_services.infusion_stop_early(
            infusion=infusion,
            ended_at=T0 + 8 * DAY + 30 * HOUR / 60,
            reason="Chills and rigors",
            by=staff_users()[0],
            cells_administered=cells,
            volume_ml=Decimal("30.0"),
        )
    infuse(people[2], T0 + 9 * DAY + 2 * HOUR)
    if dlt:
        event = _dlt(people[1], on=T0 + 12 * DAY)
        with frozen(T0 + 12 * DAY):
            services.dlt_decide(event=event, confirm=True, reason="Grade 3 infusion reaction", by=investigator)
    record_visits(people, until=(T0 + WINDOWS).date())
    return cohort, people


def test_a_participant_stopped_early_without_a_dlt_is_not_evaluable_and_needs_a_replacement(
    nct_trial, client, admin_user
):
    cohort, people = _cohort_with_one_stopped_early(nct_trial, cells=18_000_000, dlt=False)
    with frozen(T0 + WINDOWS):
        (review,) = services.reviews_open_due()
        client.force_login(admin_user)
        page = client.get(reverse("admin:cohorts_cohort_change", args=[cohort.pk]))
    people[1].refresh_from_db()
    assert review.snapshot["outcomes"] == "1NN"  # she is not counted as an N
    assert review.snapshot["needs_replacement"] == [people[1].study_id]
    assert review.snapshot["dose_levels"][0] | {"label": None, "cells": None} == {
        "dose_level": 1,
        "label": None,
        "cells": None,
        "treated": 3,
        "evaluable": 2,
        "dlts": 0,
    }
    assert services.protocol_recommendation(review) == "expand"  # the cohort of 3 is not complete
    assert f"{people[1].study_id}: NEEDS REPLACEMENT" in page.content.decode()


def test_a_participant_stopped_early_with_a_dlt_counts_as_a_dlt(nct_trial):
    _, _people = _cohort_with_one_stopped_early(nct_trial, cells=18_000_000, dlt=True)
    with frozen(T0 + WINDOWS):
        (review,) = services.reviews_open_due()
    assert review.snapshot["outcomes"] == "1NTN"
    assert review.snapshot["needs_replacement"] == []


def test_a_participant_stopped_early_after_the_full_dose_within_tolerance_is_evaluable(nct_trial):
    _, _ = _cohort_with_one_stopped_early(nct_trial, cells=54_000_000, dlt=False)  # 90 % of 6.0 × 10⁷
    with frozen(T0 + WINDOWS):
        (review,) = services.reviews_open_due()
    assert review.snapshot["outcomes"] == "1NNN"


# --- the committee sees what it decides on ------------------------------------------------------------------------


def test_the_review_lists_serious_events_and_dlt_decisions_with_the_investigators_reason(nct_trial):
    from tests.cohorts.test_infusions_support import enrolled_cohort

    coordinator, investigator = staff_users()
    _cohort, people = enrolled_cohort(nct_trial)
    infuse(people[0], T0)
    with frozen(T0 + 3 * DAY):
        services.adverse_event_record(
            participant=people[0],
            by=coordinator,
            values={
                "verbatim_term": "Pneumonia",
                "ctcae_term_text": "Lung infection",
                "grade": 2,
                "serious": True,
                "sae_hospitalisation": True,
                "relationship": "unlikely",
                "expected": False,
                "onset_date": (T0 + 2 * DAY).date(),
                "outcome": "recovering",
            },
        )
    infuse(people[1], T0 + 8 * DAY)
    infuse(people[2], T0 + 9 * DAY + 2 * HOUR)
    candidate = _dlt(people[1], on=T0 + 12 * DAY)
    with frozen(T0 + 12 * DAY):
        services.dlt_decide(event=candidate, confirm=False, reason="Neutropenia predates the infusion", by=investigator)
    record_visits(people, until=(T0 + WINDOWS).date())
    with frozen(T0 + WINDOWS):
        (review,) = services.reviews_open_due()
    people[0].refresh_from_db()
    (serious,) = review.snapshot["serious_events"]
    assert serious | {"id": None} == {
        "id": None,
        "study_id": people[0].study_id,
        "term": "Lung infection",
        "grade": 2,
        "relationship": "unlikely",
        "expected": False,
        "outcome": "recovering",
        "onset_date": str((T0 + 2 * DAY).date()),
    }
    (dlt,) = review.snapshot["dlt_candidates"]
    assert (dlt["status"], dlt["decided_by"], dlt["reason"]) == (
        "rejected",
        investigator.get_full_name(),
        "Neutropenia predates the infusion",
    )


def _review_with_visits(nct_trial, *, skip: tuple[int, str], open_at: dt.datetime):
    """The low-dose cohort infused; every visit up to the windows' end recorded except ``skip``
    (participant index, visit code); the review open at ``open_at``."""
    from tests.cohorts.test_infusions_support import enrolled_cohort

    _cohort, people = enrolled_cohort(nct_trial)
    for person, when in zip(people, (T0, T0 + 8 * DAY, T0 + 9 * DAY + 2 * HOUR), strict=True):
        infuse(person, when)
    skipped = FollowUpVisit.objects.get(participant=people[skip[0]], code=skip[1])
    record_visits([p for p in people if p != people[skip[0]]], until=open_at.date())
    others = FollowUpVisit.objects.filter(participant=people[skip[0]]).exclude(pk=skipped.pk)
    for visit in others.filter(target_date__lte=open_at.date()):
        with frozen(dt.datetime.combine(visit.target_date, dt.time(12), tzinfo=T0.tzinfo)):
            cohort_services.visit_complete(visit=visit, on=visit.target_date, by=staff_users()[0])
    with frozen(open_at):
        (review,) = services.reviews_open_due()
    return review, skipped


def test_an_overdue_day_7_visit_holds_the_decision_until_it_is_recorded_or_addressed(nct_trial):
    review, visit = _review_with_visits(nct_trial, skip=(1, "D7"), open_at=AFTER_WINDOWS)
    assert [(v["id"], v["status"]) for v in review.snapshot["unrecorded_visits"]] == [(visit.pk, "overdue")]
    members = committee()
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=review, decision="escalate", by=members[0])
    assert refused.value.code == "visits_unrecorded" and "D7" in refused.value.message
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=review, decision="escalate", acknowledge_visits=True, by=members[0])
    assert refused.value.code == "rationale_required"
    review = decide(
        review,
        members,
        "escalate",
        AFTER_WINDOWS,
        acknowledge_visits=True,
        rationale="Day 7 visit done by telephone; source document follows",
    )
    assert review.acknowledged_visits == [visit.pk]
    assert review.resulting_cohort.dose_level.level == 2


def test_a_visit_recorded_as_missed_is_shown_but_does_not_hold_the_decision(nct_trial):
    review, visit = _review_with_visits(nct_trial, skip=(1, "D7"), open_at=AFTER_WINDOWS - DAY)
    with frozen(AFTER_WINDOWS - DAY):
        cohort_services.visit_miss(visit=visit, reason="Participant travelling", by=staff_users()[0])
    review = decide(review, committee(), "escalate", AFTER_WINDOWS)
    assert review.snapshot["unrecorded_visits"][0]["status"] == "overdue"  # as the committee first saw it
    assert review.resulting_cohort is not None


def test_a_visit_the_sweep_marked_missed_holds_the_decision_until_staff_record_it(nct_trial):
    review, visit = _review_with_visits(nct_trial, skip=(1, "D7"), open_at=AFTER_WINDOWS)
    with frozen(AFTER_WINDOWS):
        cohort_services.follow_up_sweep(trial_id=nct_trial.pk)
    visit.refresh_from_db()
    assert (visit.status, visit.missed_automatically) == ("missed", True)
    members = committee()
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=review, decision="escalate", by=members[0])
    assert refused.value.code == "visits_unrecorded" and "D7" in refused.value.message
    with frozen(AFTER_WINDOWS):
        cohort_services.visit_miss(visit=visit, reason="Participant travelling", by=staff_users()[0])
    review = decide(review, members, "escalate", AFTER_WINDOWS)
    assert review.resulting_cohort is not None


def test_stopping_the_trial_never_waits_for_visits(nct_trial):
    review, _ = _review_with_visits(nct_trial, skip=(1, "D7"), open_at=AFTER_WINDOWS)
    review = decide(review, committee(), "stop", AFTER_WINDOWS, rationale="Sponsor stops the programme")
    assert review.decision == "stop"


def test_a_visit_that_becomes_overdue_after_the_proposal_holds_the_quorum_signature(nct_trial):
    # The third participant's window ends on T0 + 37 days; her day-28 visit window closes on T0 + 39 days.
    open_at = T0 + 38 * DAY
    review, visit = _review_with_visits(nct_trial, skip=(2, "D28"), open_at=open_at)
    assert review.snapshot["unrecorded_visits"] == []  # not overdue yet
    members = committee()
    with frozen(open_at):
        services.review_propose(review=review, decision="escalate", by=members[0])
    with frozen(T0 + 40 * DAY):
        for member in members[:2]:
            services.review_sign(review=review, user=member, password=PASSWORD, meaning="approve")
        with pytest.raises(DomainError) as refused:
            services.review_sign(review=review, user=members[2], password=PASSWORD, meaning="approve")
    assert refused.value.code == "visits_unrecorded"
    assert Cohort.objects.count() == 1
    with frozen(T0 + 40 * DAY):
        cohort_services.visit_complete(visit=visit, on=(T0 + 37 * DAY).date(), by=staff_users()[0])
        services.review_sign(review=review, user=members[2], password=PASSWORD, meaning="approve")
    review.refresh_from_db()
    assert review.state == SafetyReview.State.EFFECTIVE


def test_the_review_page_shows_the_committee_the_lists(reviewed, client, admin_user):  # noqa: F811
    with frozen(AFTER_WINDOWS):
        client.force_login(admin_user)
        page = client.get(reverse("admin:safety_safetyreview_change", args=[reviewed.pk])).content.decode()
    for heading in (
        "MTD selection",
        "Participants (evaluability)",
        "Serious adverse events",
        "DLT candidates and decisions",
        "Safety visits in DLT windows",
    ):
        assert heading in page
    assert "MTD not reached; highest dose cleared: 1" in page
    assert AdverseEvent.objects.count() == 0
