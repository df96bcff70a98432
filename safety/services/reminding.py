"""The safety-side reminders, scheduled and cancelled in the caller's transaction (reminders' public services).

- An adverse event that is a DLT candidate: "awaits your decision" to the investigators, now; the decision
  cancels it. A candidate of a cohort's sentinel cancels that cohort's "sentinel observation ended".
- A serious event not resolved: a follow-up ``sae_follow_up_days`` after awareness; resolution cancels it.
- A reporting clock: the sponsor's 24 h notice at awareness, at 12 h and when overdue; a SUSAR report
  ``report_reminder_days`` before it is due and when overdue. Recording the report cancels them.
- A review: "opened" to the committee; at the proposal, "awaits your signature" and a reminder
  ``review_reminder_days`` before its target date (opened + ``review_target_days``) to each member who has
  not signed; her signature cancels hers, the end of the review (effective, rejected, withdrawn) all of them.
  A decision that took effect tells the site staff.
- A signing lockout tells the locked-out member until when.
"""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from cohorts import services as cohort_services
from cohorts.models import Enrollment
from reminders import services as reminders
from reminders.kinds import lead_days
from safety.models import AdverseEvent, ReportingClock, SafetyReview

RESOLVED_OUTCOMES = (AdverseEvent.Outcome.RECOVERED, AdverseEvent.Outcome.SEQUELAE, AdverseEvent.Outcome.FATAL)
SIGNATURE_KINDS = ("review-signature", "review-target")


def event_subject(event: AdverseEvent) -> str:
    return f"ae:{event.pk}"


def _event_label(event: AdverseEvent) -> str:
    participant = event.participant
    return f"{event.verbatim_term} (grade {event.worst_grade}) of {participant.study_id or participant}"


def event_reminders_update(*, event: AdverseEvent, by) -> None:
    """After an event is recorded or followed up: its DLT-decision and serious-event follow-up reminders."""
    participant = event.participant
    common = {"subject": event_subject(event), "subject_label": _event_label(event), "trial": participant.trial,
              "site": participant.site, "by": by}  # fmt: skip
    now = timezone.now()
    if event.dlt_status == AdverseEvent.DltStatus.CANDIDATE:
        reminders.reminder_schedule(kind="dlt-decision", due_at=now, event_at=now, **common)
        enrollment = (
            Enrollment.objects.filter(participant=participant, is_sentinel=True).select_related("cohort").first()
        )
        if enrollment is not None:
            reminders.reminder_cancel(
                subject=cohort_services.sentinel_subject(enrollment.cohort),
                reason=f"the sentinel has a DLT candidate ({event.verbatim_term}): the hold goes on",
                by=by,
            )
    if event.serious and event.resolution_date is None and event.outcome not in RESOLVED_OUTCOMES:
        days = lead_days("sae_follow_up_days", participant.trial.sae_follow_up_days)
        due = event.site_aware_at + timedelta(days=days)
        reminders.reminder_schedule(kind="sae-follow-up", due_at=due, event_at=due, **common)
    else:
        reminders.reminder_cancel(
            subject=event_subject(event), kinds=("sae-follow-up",), reason="the event is resolved or not serious", by=by
        )


def dlt_decision_reminders_cancel(*, event: AdverseEvent, by) -> None:
    reminders.reminder_cancel(
        subject=event_subject(event), kinds=("dlt-decision",), reason=f"DLT {event.dlt_status}", by=by
    )


def clock_subject(clock: ReportingClock) -> str:
    return f"clock:{clock.pk}"


def clock_reminders_schedule(*, clock: ReportingClock, event: AdverseEvent, by) -> None:
    participant = event.participant
    common = {"subject": clock_subject(clock), "event_at": clock.due_at, "trial": participant.trial,
              "site": participant.site, "by": by,
              "subject_label": f"{clock.get_kind_display()} for {_event_label(event)}"}  # fmt: skip
    if clock.kind == ReportingClock.Kind.SPONSOR_24H:
        stages = [
            ("sponsor-notice", clock.started_at),
            ("sponsor-notice-12h", clock.started_at + timedelta(hours=12)),
            ("sponsor-notice-overdue", clock.due_at),
        ]
    else:
        days = lead_days("report_reminder_days", participant.trial.report_reminder_days)
        stages = [
            ("susar-report", max(clock.started_at, clock.due_at - timedelta(days=days))),
            ("susar-report-overdue", clock.due_at),
        ]
    for kind, due in stages:
        reminders.reminder_schedule(kind=kind, due_at=due, **common)


def clock_reminders_cancel(*, clock: ReportingClock, by) -> None:
    reminders.reminder_cancel(subject=clock_subject(clock), reason=f"reported to {clock.reported_to}", by=by)


def review_subject(review: SafetyReview) -> str:
    return f"review:{review.pk}"


def _review_label(review: SafetyReview) -> str:
    return f"Safety review {review.pk} of cohort {review.cohort.sequence}"


def committee_members():
    perm = Q(groups__permissions__codename="sign_review") | Q(user_permissions__codename="sign_review")
    return get_user_model().objects.filter(perm, is_active=True).distinct().order_by("pk")


def review_opened_reminder(*, review: SafetyReview, by) -> None:
    reminders.reminder_schedule(
        kind="review-opened", subject=review_subject(review), subject_label=_review_label(review),
        due_at=review.opened_at, event_at=review.opened_at, trial=review.trial, site=_first_site(review), by=by,
    )  # fmt: skip


def review_signature_reminders(*, review: SafetyReview, by) -> None:
    """At the proposal: each member who has not signed is asked to, now and before the target date."""
    trial = review.trial
    target = review.opened_at + timedelta(days=lead_days("review_target_days", trial.review_target_days))
    before = target - timedelta(days=lead_days("review_reminder_days", trial.review_reminder_days))
    signed = set(review.signatures.values_list("signer_id", flat=True))
    now = timezone.now()
    for member in committee_members().exclude(pk__in=signed):
        for kind, due, moment in (
            ("review-signature", now, review.proposed_at),
            ("review-target", max(now, before), target),
        ):
            reminders.reminder_schedule(
                kind=kind, subject=review_subject(review), subject_label=_review_label(review), due_at=due,
                event_at=moment, trial=trial, site=_first_site(review), recipient_user=member, by=by,
            )  # fmt: skip


def review_signed_reminders_cancel(*, review: SafetyReview, signer) -> None:
    reminders.reminder_cancel_for_user(
        subject=review_subject(review), kinds=SIGNATURE_KINDS, user=signer, reason="signed", by=signer
    )


def review_closed_reminders_cancel(*, review: SafetyReview, by) -> None:
    reminders.reminder_cancel(subject=review_subject(review), reason=f"review {review.state}", by=by)


def decision_effective_reminder(*, review: SafetyReview, by) -> None:
    what = review.get_decision_display()
    if review.resulting_cohort_id:
        what += f": cohort {review.resulting_cohort.sequence} is open"
    reminders.reminder_schedule(
        kind="decision-effective", subject=f"decision:{review.pk}", subject_label=f"{_review_label(review)} ({what})",
        due_at=review.decided_at, event_at=review.decided_at, trial=review.trial, site=_first_site(review), by=by,
    )  # fmt: skip


def signing_lockout_reminder(*, user, failure_id: int, until: datetime) -> None:
    reminders.reminder_schedule(
        kind="signing-lockout", subject=f"signer:{user.pk}", subject_label=f"{user.get_full_name() or user}",
        due_at=timezone.now(), event_at=until, recipient_user=user, stage=str(failure_id), by=user,
    )  # fmt: skip


def _first_site(review: SafetyReview):
    return review.trial.sites.order_by("pk").first()
