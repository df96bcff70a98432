"""Consent in force and the eligibility verdict: the facts the pure rules read, and their summary."""

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q
from django.utils import timezone

from cohorts import rules
from cohorts.models import (
    ConsentDocument,
    ConsentRecord,
    GilbertSyndromeDiagnosis,
    Participant,
    ScreeningRecord,
)
from cohorts.selectors.sites import site_today, site_zone
from trial.models import Trial


def consent_document_in_force(*, trial: Trial, on: date) -> ConsentDocument | None:
    return (
        ConsentDocument.objects.filter(trial=trial, effective_from__lte=on)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=on))
        .order_by("-effective_from")
        .first()
    )


def current_consent(participant: Participant, *, on: date | None = None) -> ConsentRecord | None:
    """The participant's signed, not withdrawn consent on the version in force, if any."""
    on = on or site_today(participant)
    document = consent_document_in_force(trial=participant.trial, on=on)
    if document is None:
        return None
    # Signed by the end of ``on`` in the site's time zone (not the active zone, which is UTC in tasks).
    end_of_day = datetime.combine(
        on + timedelta(days=1), time.min, tzinfo=zoneinfo.ZoneInfo(participant.site.time_zone)
    )
    return (
        participant.consents.filter(document=document, withdrawn_at__isnull=True, signed_at__lt=end_of_day)
        .order_by("-signed_at")
        .first()
    )


def criteria_specs(trial: Trial) -> tuple[rules.CriterionSpec, ...]:
    return rules.criteria_from_data(
        {
            "code": c.code,
            "kind": c.kind,
            "rule": c.rule,
            "params": c.params,
            "text": c.text,
            "needs_judgment": c.needs_judgment,
        }
        for c in trial.criteria.order_by("order")
    )


_FACT_FIELDS = (
    "years_since_last_menses",
    "natural_menopause",
    "weight_kg",
    "height_cm",
    "multiple_site_fracture_history",
    "t_score_lumbar_l1_l4",
    "t_score_total_hip",
    "t_score_femoral_neck",
    "high_fall_risk",
    "frax_major_pct",
    "frax_hip_pct",
    "glucocorticoid_dose_mg_per_day",
    "glucocorticoid_duration_months",
    "measurable_lumbar_vertebrae",
    "dxa_impeded",
    "ast_x_uln",
    "alt_x_uln",
    "alp_x_uln",
    "bilirubin_x_uln",
    "egfr",
    "tsh",
    "tsh_lower_limit",
    "tsh_upper_limit",
    "t4_in_range",
    "hbv_dna_cps_per_ml",
    "hbv_dna_uln",
    "hcv_antibody_positive",
    "hcv_rna_above_uln",
    "syphilis_antibody_positive",
    "hiv_antibody_positive",
    "last_pth_analog_date",
    "last_rankl_inhibitor_date",
    "oral_bisphosphonate_cumulative_months",
    "last_oral_bisphosphonate_date",
    "last_iv_bisphosphonate_date",
    "prior_cell_therapy",
    "transplant_or_radiation",
    "last_other_trial_date",
)


def gilbert_syndrome(participant: Participant) -> rules.DocumentedDiagnosis | None:
    """Gilbert's syndrome as an investigator documented it: by whom and on which site date (None: not documented)."""
    diagnosis = (
        GilbertSyndromeDiagnosis.objects.filter(participant=participant, documented=True)
        .select_related("recorded_by")
        .first()
    )
    if diagnosis is None:
        return None
    who = diagnosis.recorded_by
    return rules.DocumentedDiagnosis(
        by=who.get_full_name() or who.get_username(),
        on=timezone.localdate(diagnosis.recorded_at, timezone=site_zone(participant)),
    )


def screening_facts(participant: Participant, *, on: date | None = None) -> rules.ScreeningFacts:
    """The plain values the eligibility rules read, from the screening record, consent, judgments and
    documented diagnoses."""
    screening: ScreeningRecord | None = getattr(participant, "screening", None)
    judgments = {j.code: j.satisfied for j in participant.judgments.all()}
    consent_signed = current_consent(participant, on=on) is not None
    base = {
        "sex": participant.sex,
        "date_of_birth": participant.date_of_birth,
        "consent_signed": consent_signed,
        "judgments": judgments,
        "gilbert_syndrome": gilbert_syndrome(participant),
    }
    if screening is None:
        return rules.ScreeningFacts(**base)
    fractures = None
    if screening.fracture_history_taken:
        fractures = tuple(
            rules.Fracture(
                date=f.date,
                site=f.site,
                on_anti_osteoporosis_treatment=f.on_anti_osteoporosis_treatment,
                fragility=f.fragility,
            )
            for f in screening.fractures.all()
        )
    return rules.ScreeningFacts(
        **base,
        screening_date=screening.screening_date,
        fractures=fractures,
        bone_treatment_history_recorded=screening.bone_treatment_history_taken,
        other_trial_history_recorded=screening.other_trial_history_taken,
        **{name: getattr(screening, name) for name in _FACT_FIELDS},
    )


def consent_criteria(specs) -> frozenset[str]:
    """Codes of the criteria that only ask for signed consent (I1 here): a missing consent is not a screen failure."""
    return frozenset(
        spec.code for spec in specs if spec.rule == "boolean_fact" and spec.params.get("fact") == "consent_signed"
    )


@dataclass(frozen=True)
class EligibilitySummary:
    result: rules.EligibilityResult
    unmet: tuple[str, ...]  # failing on data or judgment, consent aside
    missing: tuple[str, ...]
    pending_judgment: tuple[str, ...]
    consent_missing: bool

    @property
    def eligible(self) -> bool:
        return self.result.eligible


def eligibility_summary(participant: Participant, *, on: date | None = None) -> EligibilitySummary:
    specs = criteria_specs(participant.trial)
    result = rules.evaluate(specs, screening_facts(participant, on=on))
    consent_codes = consent_criteria(specs)
    failing_consent = [c for c in result.unmet + result.missing if c in consent_codes]
    return EligibilitySummary(
        result=result,
        unmet=tuple(c for c in result.unmet if c not in consent_codes),
        missing=tuple(c for c in result.missing if c not in consent_codes),
        pending_judgment=tuple(result.pending_judgment),
        consent_missing=bool(failing_consent),
    )
