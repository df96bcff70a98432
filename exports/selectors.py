"""The reads behind the exports: querysets meant to be walked with ``.iterator()`` (constant memory).

Per-participant facts an export row needs (first and last infusion, consent, death, last visit) are
subqueries on the row's own query, never a dictionary of the whole trial held in memory.
"""

import zoneinfo
from functools import lru_cache

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from cohorts.models import ConsentRecord, CriterionAssessment, FollowUpVisit, Infusion, Participant
from exports.permissions import Audience
from safety.models import AdverseEvent, SafetyReview
from trial.models import Trial


@lru_cache(maxsize=64)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _first(queryset: QuerySet, field: str, *, order: str | None = None) -> Subquery:
    return Subquery(queryset.order_by(order or field).values(field)[:1])


def _first_infusion(participant_ref: str = "pk") -> Subquery:
    return _first(Infusion.objects.filter(participant=OuterRef(participant_ref)), "started_at")


def subject_filter(audience: Audience, prefix: str = "") -> Q:
    """The participants an export covers: everyone enrolled (known by study ID); screen failures too for
    roles that read screening data (known by a pseudonymous SF number, never the screening number)."""
    covered = Q(**{f"{prefix}study_id__isnull": False})
    if audience.screening:
        covered |= Q(**{f"{prefix}status": Participant.Status.SCREEN_FAILED})
    return covered & audience.scope.participants(prefix)  # the reader's sites (or trials) only


def subjects(trial: Trial, audience: Audience) -> QuerySet[Participant]:
    """One row per subject of DM / DS, with what those domains need as subqueries."""
    infusions = Infusion.objects.filter(participant=OuterRef("pk"))
    return (
        Participant.objects.filter(trial=trial)
        .filter(subject_filter(audience))
        .select_related("site", "screening")
        .annotate(
            cohort_sequence=F("enrollments__cohort__sequence"),
            dose_level=F("enrollments__cohort__dose_level__level"),
            dose_label=F("enrollments__cohort__dose_level__label"),
            dose_cells=F("enrollments__cohort__dose_level__cells"),
            enrolled_at=F("enrollments__enrolled_at"),
            first_start=_first(infusions, "started_at"),
            last_end=_first(infusions.exclude(ended_at=None), "ended_at", order="-ended_at"),
            consent_at=_first(ConsentRecord.objects.filter(participant=OuterRef("pk")), "signed_at"),
            death_on=_first(
                AdverseEvent.objects.filter(participant=OuterRef("pk"), outcome=AdverseEvent.Outcome.FATAL),
                "onset_date",
            ),
            last_visit_on=_first(
                FollowUpVisit.objects.filter(participant=OuterRef("pk"), status=FollowUpVisit.Status.COMPLETED),
                "done_on",
                order="-done_on",
            ),
        )
        .order_by(F("study_id").asc(nulls_last=True), "pk")
    )


def infusions(trial: Trial, audience: Audience) -> QuerySet[Infusion]:
    return (
        Infusion.objects.filter(trial=trial)
        .filter(subject_filter(audience, "participant__"))
        .select_related("participant__site", "dose_level")
        .annotate(reference_start=_first_infusion("participant"))
        .order_by("participant__study_id", "participant_id", "sequence")
    )


def adverse_events(trial: Trial, audience: Audience) -> QuerySet[AdverseEvent]:
    return (
        AdverseEvent.objects.filter(participant__trial=trial)
        .filter(subject_filter(audience, "participant__"))
        .select_related("participant__site", "ctcae_term")
        .annotate(
            reference_start=_first_infusion("participant"),
            first_infusion=_first(
                Infusion.objects.filter(participant=OuterRef("participant")), "pk", order="started_at"
            ),
        )
        .order_by("participant__study_id", "participant_id", "onset_date", "pk")
    )


def unmet_criteria(trial: Trial, audience: Audience) -> QuerySet[CriterionAssessment]:
    """Inclusion criteria not met and exclusion criteria present (SDTM IE holds only those)."""
    return (
        CriterionAssessment.objects.filter(screening__participant__trial=trial, verdict="not_met")
        .filter(subject_filter(audience, "screening__participant__"))
        .select_related("screening__participant__site")
        .order_by("screening__participant__study_id", "screening__participant_id", "order")
    )


def review_for_dossier(pk: int) -> SafetyReview:
    return (
        SafetyReview.objects.select_related("trial", "cohort__dose_level", "resulting_cohort__dose_level",
                                            "mtd_dose_level", "proposed_by")
        .prefetch_related("signatures")
        .get(pk=pk)
    )  # fmt: skip
