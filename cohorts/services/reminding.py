"""The cohort-side reminders, scheduled and cancelled in the caller's transaction (reminders' public services).

- A visit, when it is planned at the end of an infusion: "window opens" the trial's ``visit_reminder_days``
  before its window opens, and "window closes today" on its last day, both at ``DAY_REMINDER_HOUR`` site time.
  Recording the visit (done or missed) cancels both.
- The sentinel's infusion, when it ends: "sentinel observation ended" ``sentinel_observation_days`` later
  (safety cancels it when the sentinel has a DLT candidate: the hold goes on).
- Any later infusion of a cohort with participants still to dose: "stagger hold ended" ``stagger_hours`` after.
"""

import zoneinfo
from datetime import date, datetime, time, timedelta

from cohorts.models import Cohort, ConsentDocument, FollowUpVisit, Infusion, Participant
from reminders import services as reminders
from reminders.kinds import lead_days

DAY_REMINDER_HOUR = 8  # a reminder about a day goes out at 08:00 where the site is


def at_site_hour(day: date, zone: zoneinfo.ZoneInfo, hour: int = DAY_REMINDER_HOUR) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone)


def visit_subject(visit: FollowUpVisit) -> str:
    return f"visit:{visit.pk}"


def visit_reminders_schedule(*, visit: FollowUpVisit, zone: zoneinfo.ZoneInfo, by) -> None:
    participant, trial = visit.participant, visit.infusion.trial
    label = f"{visit.name} of {participant.study_id or participant}"
    lead = lead_days("visit_reminder_days", trial.visit_reminder_days)
    common = {"subject": visit_subject(visit), "subject_label": label, "trial": trial, "site": participant.site}
    reminders.reminder_schedule(
        kind="visit-window-opens",
        due_at=at_site_hour(visit.window_start - timedelta(days=lead), zone),
        event_at=datetime.combine(visit.window_start, time(0), tzinfo=zone),
        by=by,
        **common,
    )
    closes = at_site_hour(visit.window_end, zone)
    reminders.reminder_schedule(kind="visit-window-closes", due_at=closes, event_at=closes, by=by, **common)


def visit_reminders_cancel(*, visit: FollowUpVisit, why: str, by) -> None:
    reminders.reminder_cancel(
        subject=visit_subject(visit), kinds=("visit-window-opens", "visit-window-closes"), reason=why, by=by
    )


def consent_subject(participant: Participant) -> str:
    return f"participant:{participant.pk}:consent"


# Who must consent again when a new version comes into force: everyone still in the study.
RECONSENT_STATUSES = (
    Participant.Status.ELIGIBLE,
    Participant.Status.ENROLLED,
    Participant.Status.INFUSED,
    Participant.Status.IN_FOLLOW_UP,
)


def reconsent_reminders_schedule(*, document: ConsentDocument, by) -> int:
    """A consent version in force from ``document.effective_from``: each participant still in the study whose
    latest consent is on an older version is to consent again (08:00 site time on the first day)."""
    participants = (
        Participant.objects.filter(trial_id=document.trial_id, status__in=RECONSENT_STATUSES)
        .exclude(consents__document__effective_from__gte=document.effective_from)
        .filter(consents__isnull=False)
        .select_related("site", "trial")
        .distinct()
    )
    count = 0
    for participant in participants:
        zone = zoneinfo.ZoneInfo(participant.site.time_zone)
        due = at_site_hour(document.effective_from, zone)
        reminders.reminder_schedule(
            kind="reconsent", subject=consent_subject(participant), stage=f"doc{document.pk}",
            subject_label=f"{participant.study_id or participant}: consent v{document.version}", due_at=due,
            event_at=datetime.combine(document.effective_from, time(0), tzinfo=zone), trial=participant.trial,
            site=participant.site, by=by,
        )  # fmt: skip
        count += 1
    return count


def reconsent_reminders_cancel(*, participant: Participant, document: ConsentDocument, by) -> None:
    reminders.reminder_cancel(
        subject=consent_subject(participant), kinds=("reconsent",), reason=f"consent v{document.version} signed", by=by
    )


def sentinel_subject(cohort: Cohort) -> str:
    return f"cohort:{cohort.pk}:sentinel"


def hold_reminders_schedule(*, cohort: Cohort, infusion: Infusion, is_first: bool, still_to_dose: int, by) -> None:
    """After an infusion ends: the sentinel's observation end, or the stagger hold's end, when someone waits."""
    if still_to_dose <= 0 or infusion.ended_at is None:
        return
    trial, participant = cohort.trial, infusion.participant
    if is_first:
        kind, subject = "sentinel-ended", sentinel_subject(cohort)
        ends = infusion.ended_at + timedelta(days=trial.sentinel_observation_days)
        # Trial-wide kinds reach every site's staff: the label names the cohort, never a participant of one site.
        label = f"cohort {cohort.sequence} (the sentinel's infusion)"
    elif trial.stagger_hours:
        kind, subject = "stagger-ended", f"infusion:{infusion.pk}:stagger"
        ends = infusion.ended_at + timedelta(hours=trial.stagger_hours)
        label = f"cohort {cohort.sequence} (the last infusion)"
    else:
        return
    reminders.reminder_schedule(
        kind=kind, subject=subject, subject_label=label, due_at=ends, event_at=ends, trial=trial,
        site=participant.site, by=by,
    )  # fmt: skip
