"""Admin for site staff: screening, judgment, consent, enrollment. Every write calls a service."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from cohorts import services
from cohorts.models import (
    Cohort,
    ConsentDocument,
    ConsentRecord,
    Enrollment,
    Fracture,
    JudgmentConfirmation,
    Participant,
    ScreeningRecord,
)
from cohorts.rules import bmi
from cohorts.selectors import cohort_next_step
from core.admin import AuditedAdmin, AuditedInline
from core.errors import DomainError
from trial.models import EligibilityCriterion

VERDICT_MARKS = {"met": "✔", "not_met": "✘", "needs_judgment": "?", "missing": "…"}


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    fk_name = "participant"
    fields = ("cohort", "slot", "is_sentinel", "enrolled_at", "enrolled_by")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Participant)
class ParticipantAdmin(AuditedAdmin):
    list_display = ("screening_number", "study_id", "status", "screening_verdict", "cohort", "site", "replaced")
    list_filter = ("status", "trial", "site", "replaced")
    search_fields = ("screening_number", "study_id")
    list_select_related = ("trial", "site", "screening")
    readonly_fields = ("study_id", "status", "withdrawn_on", "withdrawal_reason", "replaced", "replacement_reason")
    fieldsets = (
        ("Screening", {"fields": ("trial", "site", "screening_number", "initials", "date_of_birth", "sex")}),
        ("Enrollment", {"fields": ("status", "study_id")}),
        ("End of participation", {"fields": ("withdrawn_on", "withdrawal_reason", "replaced", "replacement_reason")}),
    )
    inlines = (EnrollmentInline,)
    actions = ("enroll_into_open_cohort",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("enrollments__cohort")

    def get_inlines(self, request, obj):
        return self.inlines if obj else ()

    def get_readonly_fields(self, request, obj=None):
        # Who the person is and where she is seen is fixed once screening started; corrections are audited edits.
        fixed = ("trial", "site", "screening_number") if obj else ()
        return (*self.readonly_fields, *fixed)

    @admin.display(description="Screening verdict")
    def screening_verdict(self, obj):
        screening = getattr(obj, "screening", None)
        return screening.get_verdict_display() if screening else "Not screened yet"

    @admin.display(description="Cohort")
    def cohort(self, obj):
        enrollments = list(obj.enrollments.all())
        return f"Cohort {enrollments[0].cohort.sequence}, slot {enrollments[0].slot}" if enrollments else "—"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = services.participant_register(
            trial=obj.trial, site=obj.site, screening_number=obj.screening_number, date_of_birth=obj.date_of_birth,
            sex=obj.sex, initials=obj.initials, by=request.user,
        )  # fmt: skip
        obj.pk = created.pk

    @admin.action(description="Enroll into the trial's open cohort", permissions=["enroll"])
    def enroll_into_open_cohort(self, request, queryset):
        for participant in queryset.select_related("trial"):
            cohort = Cohort.objects.filter(trial=participant.trial, state__in=["open", "full", "paused"]).first()
            if cohort is None:
                self.message_user(request, f"{participant}: {participant.trial.registry_id} has no open cohort.",
                                  messages.ERROR)  # fmt: skip
                continue
            try:
                enrollment = services.enroll_participant(participant=participant, cohort=cohort, by=request.user)
            except DomainError as refused:
                self.message_user(request, f"Screening {participant.screening_number} not enrolled: {refused.message}",
                                  messages.ERROR)  # fmt: skip
            else:
                enrollment.participant.refresh_from_db()
                sentinel = " (sentinel: dosed alone first)" if enrollment.is_sentinel else ""
                self.message_user(
                    request,
                    f"Screening {participant.screening_number} enrolled as {enrollment.participant.study_id} "
                    f"in cohort {cohort.sequence}, slot {enrollment.slot}{sentinel}.",
                    messages.SUCCESS,
                )

    def has_enroll_permission(self, request):
        return request.user.has_perm("cohorts.add_enrollment")


class FractureInline(AuditedInline):
    model = Fracture
    fields = ("date", "site", "fragility", "on_anti_osteoporosis_treatment")
    extra = 1


@admin.register(ScreeningRecord)
class ScreeningRecordAdmin(AuditedAdmin):
    list_display = ("participant", "screening_date", "verdict", "evaluated_at")
    list_filter = ("verdict", "participant__trial")
    search_fields = ("participant__screening_number", "participant__study_id")
    list_select_related = ("participant",)
    autocomplete_fields = ()
    readonly_fields = ("verdict", "evaluated_at", "bmi_display", "criteria_table")
    inlines = (FractureInline,)
    fieldsets = (
        ("Eligibility (evaluated on save)", {"fields": ("verdict", "evaluated_at", "criteria_table")}),
        ("Visit", {"fields": ("participant", "screening_date")}),
        ("Menopause and body size", {"fields": ("years_since_last_menses", "natural_menopause", "weight_kg",
                                                "height_cm", "bmi_display")}),
        ("Fractures and fracture risk", {"fields": ("fracture_history_taken", "multiple_site_fracture_history",
                                                    "high_fall_risk", "frax_major_pct", "frax_hip_pct")}),
        ("DXA", {"fields": ("t_score_lumbar_l1_l4", "t_score_total_hip", "t_score_femoral_neck",
                            "measurable_lumbar_vertebrae", "dxa_impeded")}),
        ("Glucocorticoids", {"fields": ("glucocorticoid_dose_mg_per_day", "glucocorticoid_duration_months")}),
        ("Liver and kidney", {"fields": ("ast_x_uln", "alt_x_uln", "alp_x_uln", "bilirubin_x_uln", "egfr")}),
        ("Thyroid", {"fields": ("tsh", "tsh_lower_limit", "tsh_upper_limit", "t4_in_range")}),
        ("Serology", {"fields": ("hbv_dna_cps_per_ml", "hbv_dna_uln", "hcv_antibody_positive", "hcv_rna_above_uln",
                                 "syphilis_antibody_positive", "hiv_antibody_positive")}),
        ("Prior bone treatment", {"fields": ("bone_treatment_history_taken", "last_pth_analog_date",
                                             "last_rankl_inhibitor_date", "oral_bisphosphonate_cumulative_months",
                                             "last_oral_bisphosphonate_date", "last_iv_bisphosphonate_date")}),
        ("Other history", {"fields": ("prior_cell_therapy", "transplant_or_radiation", "other_trial_history_taken",
                                      "last_other_trial_date")}),
    )  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "participant") if obj else self.readonly_fields

    @admin.display(description="BMI (kg/m²)")
    def bmi_display(self, obj):
        if obj.weight_kg and obj.height_cm:
            return f"{bmi(obj.weight_kg, obj.height_cm):.1f}"
        return "—"

    @admin.display(description="Criteria")
    def criteria_table(self, obj):
        rows = list(obj.assessments.all()) if obj.pk else []
        if not rows:
            return "Not evaluated yet: save the screening data."
        body = format_html_join(
            "", "<tr><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            ((r.code, VERDICT_MARKS.get(r.verdict, ""), r.get_verdict_display(), r.reason) for r in rows),
        )  # fmt: skip
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
        self.fields["satisfied"].help_text = "Tick if the participant satisfies this criterion (for an exclusion: " \
            "the condition is absent)."  # fmt: skip


@admin.register(JudgmentConfirmation)
class JudgmentConfirmationAdmin(AuditedAdmin):
    form = JudgmentForm
    list_display = ("participant", "code", "satisfied", "confirmed_by", "confirmed_at")
    list_filter = ("code", "satisfied")
    list_select_related = ("participant", "confirmed_by")
    readonly_fields = ("confirmed_by", "confirmed_at")

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": ["participant", "code", "satisfied", "note", "confirmed_by", "confirmed_at"]})]

    def save_model(self, request, obj, form, change):
        saved = services.judgment_confirm(
            participant=obj.participant, code=form.cleaned_data["code"], satisfied=obj.satisfied, note=obj.note,
            by=request.user,
        )  # fmt: skip
        obj.pk = saved.pk


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(AuditedAdmin):
    list_display = ("trial", "version", "title", "effective_from", "effective_to")
    list_filter = ("trial",)
    list_select_related = ("trial",)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(AuditedAdmin):
    list_display = ("participant", "document", "signed_at", "obtained_by", "withdrawn_at")
    list_filter = ("document", "withdrawn_at")
    list_select_related = ("participant", "document", "obtained_by")
    readonly_fields = ("obtained_by", "withdrawn_at", "withdrawal_reason")

    def get_fieldsets(self, request, obj=None):
        fields = ["participant", "document", "signed_at", "witness_name", "obtained_by", "withdrawn_at",
                  "withdrawal_reason"]  # fmt: skip
        return [(None, {"fields": fields})]

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "participant", "document", "signed_at") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        saved = services.consent_record(
            participant=obj.participant, document=obj.document, signed_at=obj.signed_at, by=request.user,
            witness_name=obj.witness_name,
        )  # fmt: skip
        obj.pk = saved.pk


@admin.register(Cohort)
class CohortAdmin(AuditedAdmin):
    list_display = ("sequence", "trial", "dose", "state", "enrolled_of_capacity", "next_step")
    list_filter = ("trial", "state")
    list_select_related = ("trial", "dose_level")
    readonly_fields = ("trial", "dose_level", "sequence", "capacity", "state", "opened_at", "opened_by", "closed_at",
                       "decision")  # fmt: skip
    fieldsets = ((None, {"fields": readonly_fields}),)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(enrolled_count=Count("enrollments"))

    def has_add_permission(self, request):
        return False  # cohorts open through services: the first by an action on the trial, later ones by the gate

    def has_change_permission(self, request, obj=None):
        return False  # the state moves only through services

    @admin.display(description="Dose")
    def dose(self, obj):
        return f"{obj.dose_level.label} ({obj.dose_level.cells_display})"

    @admin.display(description="Enrolled")
    def enrolled_of_capacity(self, obj):
        return f"{obj.enrolled_count} / {obj.capacity}"

    @admin.display(description="What has to happen next")
    def next_step(self, obj):
        return cohort_next_step(obj, obj.enrolled_count)


@admin.register(Enrollment)
class EnrollmentAdmin(AuditedAdmin):
    list_display = ("participant", "cohort", "slot", "is_sentinel", "enrolled_at", "enrolled_by")
    list_filter = ("cohort__trial", "is_sentinel")
    list_select_related = ("participant", "cohort__dose_level", "enrolled_by")
    readonly_fields = ("trial", "participant", "cohort", "slot", "cohort_capacity", "is_sentinel", "enrolled_at",
                       "enrolled_by")  # fmt: skip

    def has_add_permission(self, request):
        return False  # enrollment is the action "Enroll into the trial's open cohort" on participants

    def has_change_permission(self, request, obj=None):
        return False
