"""Screening: the record with its criteria verdicts, investigators' judgments, Gilbert's syndrome."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from cohorts import selectors, services
from cohorts.models import (
    Fracture,
    GilbertSyndromeDiagnosis,
    JudgmentConfirmation,
    Participant,
    ScreeningRecord,
)
from cohorts.rules import bmi
from core.admin import AuditedAdmin, AuditedInline, ServiceRefusalMixin
from trial.models import EligibilityCriterion

VERDICT_MARKS = {"met": "✔", "not_met": "✘", "needs_judgment": "?", "missing": "…"}


def _gilbert_diagnosis(screening: ScreeningRecord) -> GilbertSyndromeDiagnosis | None:
    if not screening.pk:
        return None
    return (
        GilbertSyndromeDiagnosis.objects.filter(participant_id=screening.participant_id)
        .select_related("recorded_by")
        .first()
    )


class FractureInline(AuditedInline):
    model = Fracture
    fields = ("date", "site", "fragility", "on_anti_osteoporosis_treatment")
    extra = 1


@admin.register(ScreeningRecord)
class ScreeningRecordAdmin(ServiceRefusalMixin, AuditedAdmin):
    list_display = ("participant", "screening_date", "verdict", "evaluated_at")
    list_filter = ("verdict", "participant__trial")
    search_fields = ("participant__screening_number", "participant__study_id")
    list_select_related = ("participant",)
    autocomplete_fields = ()
    readonly_fields = (
        "verdict",
        "evaluated_at",
        "bmi_display",
        "criteria_table",
        "gilbert_syndrome",
        "gilbert_syndrome_to_record",
    )
    inlines = (FractureInline,)
    fieldsets = (
        ("Eligibility (evaluated on save)", {"fields": ("verdict", "evaluated_at", "criteria_table")}),
        ("Visit", {"fields": ("participant", "screening_date")}),
        (
            "Menopause and body size",
            {"fields": ("years_since_last_menses", "natural_menopause", "weight_kg", "height_cm", "bmi_display")},
        ),
        (
            "Fractures and fracture risk",
            {
                "fields": (
                    "fracture_history_taken",
                    "multiple_site_fracture_history",
                    "high_fall_risk",
                    "frax_major_pct",
                    "frax_hip_pct",
                )
            },
        ),
        (
            "DXA",
            {
                "fields": (
                    "t_score_lumbar_l1_l4",
                    "t_score_total_hip",
                    "t_score_femoral_neck",
                    "measurable_lumbar_vertebrae",
                    "dxa_impeded",
                )
            },
        ),
        ("Glucocorticoids", {"fields": ("glucocorticoid_dose_mg_per_day", "glucocorticoid_duration_months")}),
        (
            "Liver and kidney",
            {"fields": ("ast_x_uln", "alt_x_uln", "alp_x_uln", "bilirubin_x_uln", "egfr", "gilbert_syndrome")},
        ),
        ("Thyroid", {"fields": ("tsh", "tsh_lower_limit", "tsh_upper_limit", "t4_in_range")}),
        (
            "Serology",
            {
                "fields": (
                    "hbv_dna_cps_per_ml",
                    "hbv_dna_uln",
                    "hcv_antibody_positive",
                    "hcv_rna_above_uln",
                    "syphilis_antibody_positive",
                    "hiv_antibody_positive",
                )
            },
        ),
        (
            "Prior bone treatment",
            {
                "fields": (
                    "bone_treatment_history_taken",
                    "last_pth_analog_date",
                    "last_rankl_inhibitor_date",
                    "oral_bisphosphonate_cumulative_months",
                    "last_oral_bisphosphonate_date",
                    "last_iv_bisphosphonate_date",
                )
            },
        ),
        (
            "Other history",
            {
                "fields": (
                    "prior_cell_therapy",
                    "transplant_or_radiation",
                    "other_trial_history_taken",
                    "last_other_trial_date",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "participant") if obj else self.readonly_fields

    @admin.display(description="BMI (kg/m²)")
    def bmi_display(self, obj):
        if obj.weight_kg and obj.height_cm:
            return f"{bmi(obj.weight_kg, obj.height_cm):.1f}"
        return "—"

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not request.user.has_perm("cohorts.add_gilbertsyndromediagnosis"):
            return fieldsets
        # Investigators get the same panel with the way to record the diagnosis.
        return [
            (
                name,
                {
                    **options,
                    "fields": tuple(
                        "gilbert_syndrome_to_record" if f == "gilbert_syndrome" else f for f in options["fields"]
                    ),
                },
            )
            for name, options in fieldsets
        ]

    @admin.display(description="Gilbert's syndrome (E14)")
    def gilbert_syndrome(self, obj):
        diagnosis = _gilbert_diagnosis(obj)
        if diagnosis is None:
            return "Not documented by an investigator: the bilirubin limit applies."
        who = diagnosis.recorded_by.get_full_name() or diagnosis.recorded_by.get_username()
        on = diagnosis.recorded_at.astimezone(selectors.site_zone(obj.participant)).date()
        if diagnosis.documented:
            return f"Documented by {who} on {on}: the bilirubin limit is waived (not AST, ALT or ALP). {diagnosis.note}"
        return f"Not documented (recorded by {who} on {on}): the bilirubin limit applies. {diagnosis.note}"

    @admin.display(description="Gilbert's syndrome (E14)")
    def gilbert_syndrome_to_record(self, obj):
        if not obj.pk:
            return "Save the screening data first."
        diagnosis = _gilbert_diagnosis(obj)
        if diagnosis is None:
            url = reverse("admin:cohorts_gilbertsyndromediagnosis_add") + f"?participant={obj.participant_id}"
        else:
            url = reverse("admin:cohorts_gilbertsyndromediagnosis_change", args=[diagnosis.pk])
        return format_html('{} <a href="{}">Record the investigator\'s diagnosis</a>', self.gilbert_syndrome(obj), url)

    @admin.display(description="Criteria")
    def criteria_table(self, obj):
        rows = list(obj.assessments.all()) if obj.pk else []
        if not rows:
            return "Not evaluated yet: save the screening data."
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            ((r.code, VERDICT_MARKS.get(r.verdict, ""), r.get_verdict_display(), r.reason) for r in rows),
        )
        return format_html("<table><tr><th>Criterion</th><th>Verdict</th><th>Why</th></tr>{}</table>", body)

    def save_model(self, request, obj, form, change):
        names = [name for name in services.SCREENING_FIELDS if name in form.cleaned_data]
        record = services.screening_record_save(
            participant=obj.participant,
            values={name: form.cleaned_data[name] for name in names},
            by=request.user,
            reason=form.cleaned_data.get("change_reason", "") if change else "",
        )
        obj.pk = record.pk

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Fractures are edited inline (audited); the verdict is re-evaluated with them.
        services.eligibility_evaluate(participant=form.instance.participant, by=request.user)

    def response_post_save_change(self, request, obj):
        return self._show_verdict(request, obj) or super().response_post_save_change(request, obj)

    def response_post_save_add(self, request, obj):
        return self._show_verdict(request, obj) or super().response_post_save_add(request, obj)

    def _show_verdict(self, request, obj):
        obj.refresh_from_db()
        level = messages.SUCCESS if obj.verdict == "eligible" else messages.WARNING
        self.message_user(request, f"Eligibility: {obj.get_verdict_display()}.", level)

    def save_formset(self, request, form, formset, change):
        formset.instance = ScreeningRecord.objects.get(pk=form.instance.pk)
        super().save_formset(request, form, formset, change)


class JudgmentForm(forms.ModelForm):
    class Meta:
        model = JudgmentConfirmation
        fields = ("participant", "code", "satisfied", "note")

    code = forms.ChoiceField(choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        codes = EligibilityCriterion.objects.filter(needs_judgment=True).order_by("trial", "order")
        self.fields["code"].choices = [(c.code, f"{c.code}: {c.text[:90]}") for c in codes]
        satisfied = self.fields["satisfied"]
        satisfied.help_text = (
            "Tick if the participant satisfies this criterion (for an exclusion: the condition is absent)."
        )


@admin.register(JudgmentConfirmation)
class JudgmentConfirmationAdmin(ServiceRefusalMixin, AuditedAdmin):
    form = JudgmentForm
    list_display = ("participant", "code", "satisfied", "confirmed_by", "confirmed_at")
    list_filter = ("code", "satisfied")
    list_select_related = ("participant", "confirmed_by")
    readonly_fields = ("confirmed_by", "confirmed_at")

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": ["participant", "code", "satisfied", "note", "confirmed_by", "confirmed_at"]})]

    def save_model(self, request, obj, form, change):
        saved = services.judgment_confirm(
            participant=obj.participant,
            code=form.cleaned_data["code"],
            satisfied=obj.satisfied,
            note=obj.note,
            by=request.user,
        )
        obj.pk = saved.pk


class GilbertDiagnosisForm(forms.ModelForm):
    class Meta:
        model = GilbertSyndromeDiagnosis
        fields = ("participant", "documented", "note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "participant" in self.fields:
            self.fields["participant"].queryset = Participant.objects.filter(
                status__in=services.SCREENING_STATUSES
            ).order_by("trial", "screening_number")
        if "note" in self.fields:
            self.fields["note"].required = False  # the service says what is missing, on this form


@admin.register(GilbertSyndromeDiagnosis)
class GilbertSyndromeDiagnosisAdmin(ServiceRefusalMixin, AuditedAdmin):
    """Investigators document Gilbert's syndrome: it waives E14's bilirubin limit (not AST, ALT or ALP)."""

    form = GilbertDiagnosisForm
    list_display = ("participant", "documented", "recorded_by", "recorded_at")
    list_filter = ("documented", "participant__trial")
    search_fields = ("participant__screening_number", "participant__study_id")
    list_select_related = ("participant", "recorded_by")

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": ["participant", "documented", "note", "recorded_by", "recorded_at"]})]

    def get_readonly_fields(self, request, obj=None):
        return ("participant", "recorded_by", "recorded_at") if obj else ("recorded_by", "recorded_at")

    def save_model(self, request, obj, form, change):
        saved = services.gilbert_diagnosis_record(
            participant=obj.participant,
            documented=obj.documented,
            note=form.cleaned_data.get("note") or "",
            by=request.user,
        )
        obj.pk = saved.pk

    def response_add(self, request, obj, post_url_continue=None):
        self._show_verdict(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        self._show_verdict(request, obj)
        return super().response_change(request, obj)

    def _show_verdict(self, request, obj):
        screening = ScreeningRecord.objects.filter(participant_id=obj.participant_id).first()
        if screening is not None:
            level = messages.SUCCESS if screening.verdict == "eligible" else messages.WARNING
            self.message_user(request, f"Eligibility re-evaluated: {screening.get_verdict_display()}.", level)
