"""The safety services schedule and cancel their reminders in their own transaction."""

import datetime as dt

import pytest
from django.utils import timezone

from cohorts.models import Enrollment
from core.errors import DomainError
from reminders import services as reminders
from reminders.models import Reminder
from safety import services
from safety.models import ReportingClock
from tests.factories import staff_users
from tests.safety.conftest import DAY0
from tests.safety.test_escalation_gate import AFTER_WINDOWS, HOUR, PASSWORD, committee, frozen

pytestmark = pytest.mark.django_db


def _record(participant, **overrides):
    coordinator, _ = staff_users()
    values = {
        "verbatim_term": "Fever after infusion", "ctcae_term_text": "Fever", "onset_date": DAY0 + dt.timedelta(days=10),
        "grade": 3, "relationship": "possible", "expected": False, "outcome": "recovering",
        "site_aware_at": timezone.now() - dt.timedelta(hours=1),
    } | overrides  # fmt: skip
    return services.adverse_event_record(participant=participant, values=values, by=coordinator)


def _states(subject, kind=None):
    rows = Reminder.objects.filter(subject=subject)
    if kind:
        rows = rows.filter(kind=kind)
    return sorted(rows.values_list("state", flat=True))


def test_a_dlt_candidate_asks_the_investigators_for_a_decision_which_cancels_it(infused):
    event = _record(infused)
    reminder = Reminder.objects.get(kind="dlt-decision")
    assert (reminder.subject, reminder.recipient_role, reminder.safety) == (f"ae:{event.pk}", "Investigator", True)
    _, investigator = staff_users()
    services.dlt_decide(event=event, confirm=False, reason="fever of another cause", by=investigator)
    assert _states(f"ae:{event.pk}", "dlt-decision") == ["cancelled"]


def test_a_sentinels_dlt_candidate_cancels_the_end_of_observation_reminder(infused):
    cohort = Enrollment.objects.get(participant=infused).cohort
    reminders.reminder_schedule(
        kind="sentinel-ended", subject=f"cohort:{cohort.pk}:sentinel", subject_label="x",
        due_at=timezone.now() + dt.timedelta(days=3), trial=cohort.trial,
    )  # fmt: skip
    _record(infused)
    assert _states(f"cohort:{cohort.pk}:sentinel") == ["cancelled"]


def test_a_serious_event_starts_the_24h_chain_at_awareness_12h_and_due_and_the_report_cancels_it(infused):
    event = _record(infused, serious=True, sae_hospitalisation=True, grade=2)
    clock = ReportingClock.objects.get(adverse_event=event, kind="sponsor_24h")
    rows = {r.kind: r for r in Reminder.objects.filter(subject=f"clock:{clock.pk}")}
    assert set(rows) == {"sponsor-notice", "sponsor-notice-12h", "sponsor-notice-overdue"}
    assert rows["sponsor-notice"].due_at == clock.started_at
    assert rows["sponsor-notice-12h"].due_at == clock.started_at + dt.timedelta(hours=12)
    assert rows["sponsor-notice-overdue"].due_at == clock.due_at
    coordinator, _ = staff_users()
    services.clock_complete(clock=clock, done_at=timezone.now(), reported_to="Sponsor safety desk", by=coordinator)
    assert _states(f"clock:{clock.pk}") == ["cancelled"] * 3


def test_a_susar_gets_a_reminder_before_each_deadline_and_when_overdue(infused):
    event = _record(infused, serious=True, sae_hospitalisation=True, relationship="probable", expected=False)
    clocks = ReportingClock.objects.filter(adverse_event=event).exclude(kind="sponsor_24h")
    assert clocks.exists()
    for clock in clocks:
        rows = {r.kind: r for r in Reminder.objects.filter(subject=f"clock:{clock.pk}")}
        assert rows["susar-report"].due_at == max(clock.started_at, clock.due_at - dt.timedelta(days=2))
        assert rows["susar-report-overdue"].due_at == clock.due_at


def test_an_unresolved_serious_event_is_followed_up_after_7_days_until_it_resolves(infused):
    event = _record(infused, serious=True, sae_hospitalisation=True, grade=2)
    follow_up = Reminder.objects.get(kind="sae-follow-up")
    assert follow_up.due_at == event.site_aware_at + dt.timedelta(days=7)
    coordinator, _ = staff_users()
    services.adverse_event_update(
        event=event, values={"outcome": "recovered", "resolution_date": DAY0 + dt.timedelta(days=12)},
        reason="resolved", by=coordinator,
    )  # fmt: skip
    assert Reminder.objects.get(pk=follow_up.pk).state == Reminder.State.CANCELLED


def test_a_non_serious_event_gets_no_follow_up_reminder(infused):
    _record(infused, grade=1)
    assert not Reminder.objects.filter(kind="sae-follow-up").exists()


def test_an_opened_review_tells_the_committee_and_a_proposal_asks_each_member_to_sign(reviewed):
    assert Reminder.objects.get(kind="review-opened").subject == f"review:{reviewed.pk}"
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    asks = Reminder.objects.filter(kind="review-signature")
    assert sorted(asks.values_list("recipient_user", flat=True)) == sorted(m.pk for m in members)
    target = Reminder.objects.filter(kind="review-target").first()
    assert target.event_at == reviewed.opened_at + dt.timedelta(days=7)
    assert target.due_at == reviewed.opened_at + dt.timedelta(days=5)


def test_a_signature_cancels_the_signers_reminders_and_the_effective_decision_all_and_tells_the_site(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    with frozen(AFTER_WINDOWS + HOUR):
        services.review_sign(review=reviewed, user=members[1], password=PASSWORD, meaning="approve")
        mine = Reminder.objects.filter(recipient_user=members[1], subject=f"review:{reviewed.pk}")
        assert set(mine.values_list("state", flat=True)) == {"cancelled"}
        others = Reminder.objects.filter(recipient_user=members[2], subject=f"review:{reviewed.pk}")
        assert set(others.values_list("state", flat=True)) == {"pending"}
        services.review_sign(review=reviewed, user=members[0], password=PASSWORD, meaning="approve")
        services.review_sign(review=reviewed, user=members[2], password=PASSWORD, meaning="approve")
    assert set(Reminder.objects.filter(subject=f"review:{reviewed.pk}").values_list("state", flat=True)) <= {
        "cancelled",
        "sent",
    }
    effective = Reminder.objects.get(kind="decision-effective")
    assert effective.recipient_role == "Site staff"
    assert "cohort 2 is open" in effective.subject_label


def test_a_signing_lockout_tells_the_member_until_when(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
        for _ in range(services.SIGNING_LOCKOUT_FAILURES):
            with pytest.raises(DomainError):
                services.review_sign(review=reviewed, user=members[1], password="wrong", meaning="approve")
    lockout = Reminder.objects.get(kind="signing-lockout")
    assert lockout.recipient_user == members[1]
    assert lockout.event_at == AFTER_WINDOWS + dt.timedelta(minutes=30)
