"""A seeded trial for the dashboard and export tests (this module holds no tests).

Built through the services with the clock frozen, reusing the cohort and review builders of the
cohorts and safety suites. NCT06949137 ends up with:

* cohort 1 (dose 1, Low): three participants infused per protocol (sentinel first), a grade 1, a
  grade 2 and two serious events (one unrelated hospitalisation, one related and unexpected, so a
  SUSAR), one DLT-window visit missed; its scheduled review signed by three members (the chair among
  them): escalation effective, cohort 2 opened;
* cohort 2 (dose 2, Medium): three participants, the second with a confirmed DLT (grade 3 febrile
  neutropenia); its review open, the decision proposed (expand) and signed by the chair only;
* reporting clocks: one reported on time, one reported late, one open and overdue;
* one screen failure (an exclusion criterion present), screening number SCR-FAIL-1.

``VIEW`` is when the pages are looked at: every DLT window is over, cohort 2 is in review.
"""

import datetime as dt
from dataclasses import dataclass

from django.core.management import call_command

from cohorts import services as cohort_services
from cohorts.models import Cohort, FollowUpVisit, Participant
from safety import services
from safety.models import AdverseEvent, CtcaeTerm, ReportingClock, SafetyReview
from tests.cohorts.test_infusions_support import DAY, HOUR, T0, enrolled_cohort, frozen, infuse_cohort, record_visits
from tests.factories import eligible_participant, staff_users
from tests.safety.test_escalation_gate import PASSWORD, committee
from tests.safety.test_review_decisions import WINDOWS, decide, run_cohort

VIEW = T0 + 95 * DAY


@dataclass
class Seeded:
    trial: object
    first: Cohort
    second: Cohort
    escalation: SafetyReview  # effective
    open_review: SafetyReview  # of cohort 2, signed by the chair only
    members: list
    events: dict[str, AdverseEvent]


def record_event(participant: Participant, *, at: dt.datetime, term: str, **values) -> AdverseEvent:
    coordinator, _ = staff_users()
    values = {"verbatim_term": term, "ctcae_term": CtcaeTerm.objects.get(term=term), "site_aware_at": at,
              "outcome": "recovered", **values}  # fmt: skip
    with frozen(at):
        return services.adverse_event_record(participant=participant, values=values, by=coordinator)


def _report(clock: ReportingClock, *, at: dt.datetime) -> None:
    coordinator, _ = staff_users()
    with frozen(at + HOUR):
        services.clock_complete(clock=clock, done_at=at, reported_to="Sponsor safety desk", by=coordinator)


def seed_trial(trial) -> Seeded:
    call_command("load_ctcae_terms", verbosity=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
    members = committee()
    with frozen(T0 - 3 * HOUR):  # a screen failure: HIV antibody positive (an exclusion criterion present)
        screen_failure = eligible_participant(trial, number="SCR-FAIL-1", hiv_antibody_positive=True)
    assert screen_failure.status == Participant.Status.SCREEN_FAILED
    first, people = enrolled_cohort(trial)
    infuse_cohort(people)
    for person in people:
        person.refresh_from_db()
    day0 = people[0].dlt_window_start
    events = {
        "headache": record_event(people[0], at=T0 + 3 * DAY, term="Headache", grade=1, relationship="not_related",
                           onset_date=day0 + dt.timedelta(days=2), resolution_date=day0 + dt.timedelta(days=3)),
        "fall": record_event(people[0], at=T0 + 6 * DAY, term="Fall", grade=3, relationship="not_related",
                       onset_date=day0 + dt.timedelta(days=5), serious=True, sae_hospitalisation=True,
                       outcome="recovering"),
        "fever": record_event(people[1], at=T0 + 12 * DAY, term="Fever", grade=2, relationship="possible",
                        onset_date=people[1].dlt_window_start + dt.timedelta(days=3), outcome="recovering"),
        "reaction": record_event(people[2], at=T0 + 10 * DAY, term="Infusion related reaction", grade=2,
                           relationship="probable", expected=False, serious=True, sae_other_important=True,
                           onset_date=people[2].dlt_window_start, resolution_date=people[2].dlt_window_start),
    }  # fmt: skip
    fall_clock = events["fall"].clocks.get(kind="sponsor_24h")
    _report(fall_clock, at=fall_clock.started_at + 2 * HOUR)  # on time
    late_clock = events["reaction"].clocks.get(kind="sponsor_24h")
    _report(late_clock, at=late_clock.due_at + 5 * HOUR)  # late; its SUSAR clock stays open (overdue by VIEW)
    _, investigator = staff_users()
    missed = FollowUpVisit.objects.get(participant=people[0], code="D14")
    with frozen(T0 + 15 * DAY):
        cohort_services.visit_miss(
            visit=missed, reason="Participant travelling; telephone contact only", by=investigator
        )
    record_visits(people, until=(T0 + WINDOWS).date())
    with frozen(T0 + WINDOWS):
        (review,) = services.reviews_open_due()
    escalation = decide(review, members, "escalate", T0 + WINDOWS)
    second = escalation.resulting_cohort
    open_review = run_cohort(second, "NTN", T0 + 41 * DAY)
    with frozen(T0 + 41 * DAY + WINDOWS + HOUR):
        services.review_propose(review=open_review, decision="expand", by=members[0])
        services.review_sign(review=open_review, user=members[0], password=PASSWORD, meaning="approve")
    first.refresh_from_db()
    second.refresh_from_db()
    trial.refresh_from_db()
    return Seeded(trial, first, second, escalation, open_review, members, events)


__all__ = ["DAY", "HOUR", "PASSWORD", "T0", "VIEW", "Seeded", "frozen", "seed_trial"]
