"""Which clinical records a closed cohort locks (the rule: ``cohorts.services.data_lock``)."""

from cohorts.models import (
    Cohort,
    DripRateReading,
    Enrollment,
    FollowUpVisit,
    Infusion,
    InfusionInterruption,
    VitalSigns,
)

INFUSION_RECORDS = (Infusion, DripRateReading, VitalSigns, InfusionInterruption)


def data_locked_cohort(participant, *, record=None, cohort: Cohort | None = None) -> Cohort | None:
    """The closed cohort that locks ``record`` (one of ``participant``'s clinical records), or None.

    Infusion records are always locked once the cohort closed; a visit when it belongs to the DLT window; any
    other audited record (an adverse event, a deviation) when it existed at the close (its first history row
    predates ``closed_at``). ``record=None`` asks about the participant's data as a whole.
    """
    if cohort is None:
        enrollment = Enrollment.objects.select_related("cohort__dose_level").filter(participant=participant).first()
        cohort = enrollment.cohort if enrollment else None
    if cohort is None or cohort.state != Cohort.State.CLOSED:
        return None
    if record is None or isinstance(record, INFUSION_RECORDS):
        return cohort
    if isinstance(record, FollowUpVisit):
        end = participant.dlt_window_end
        return cohort if end is None or record.target_date <= end else None
    first = record.history.order_by("history_date").values_list("history_date", flat=True).first()
    return cohort if first is None or cohort.closed_at is None or first <= cohort.closed_at else None
