"""Admin for site staff: screening, judgment, consent, enrollment. Every write calls a service."""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from cohorts import selectors, services
from cohorts.models import (
    IMPLAUSIBLE_RATE_FACTOR,
    Cohort,
    ConsentDocument,
    ConsentRecord,
    DripRateReading,
    Enrollment,
    FollowUpVisit,
    Fracture,
    GilbertSyndromeDiagnosis,
    Infusion,
    InfusionInterruption,
    JudgmentConfirmation,
    Participant,
    ProtocolDeviation,
    ScreeningRecord,
    VitalSigns,
    ml_per_hour,
)
from cohorts.rules import bmi
from cohorts.selectors import cohort_next_step
from core.admin import AuditedAdmin, AuditedInline, ReasonForChangeForm
from core.errors import DomainError
from trial.models import EligibilityCriterion


class RefusalClean:
    """Shows a service's refusal of the previous submission as the form's own error."""

    domain_error: DomainError | None = None

    def clean(self):
        cleaned = super().clean()
        refused = self.domain_error
        if refused is not None:
            placed = False
            for name, messages_ in refused.fields.items():
                if name in self.fields and name not in self.errors:
                    self.add_error(name, messages_[0] if messages_ else refused.message)
                    placed = True
            if not placed or refused.message not in (m for ms in refused.fields.values() for m in ms):
                raise ValidationError(refused.message, code=refused.code)
        return cleaned


class ServiceRefusalForm(RefusalClean, forms.ModelForm):
    pass


class ServiceRefusalMixin:
    """Catch a ``DomainError`` from a service called by ``save_model``/``save_related``: the view's
    transaction is rolled back (nothing saved), and the submitted form is shown again with the refusal."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refused:
            if request.method != "POST" or getattr(request, "_domain_error", None) is not None:
                raise
            request._domain_error = refused
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refused = getattr(request, "_domain_error", None)
        if not refused:
            return form
        bases = (form,) if issubclass(form, RefusalClean) else (RefusalClean, form)
        return type(form.__name__, bases, {"domain_error": refused})


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
class ParticipantAdmin(ServiceRefusalMixin, AuditedAdmin):
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
            changed = {n: form.cleaned_data[n] for n in services.PARTICIPANT_EDITABLE if n in form.changed_data}
            if changed:  # through the service: validated, refused after enrollment, eligibility re-evaluated
                services.participant_update(
                    participant=obj, values=changed, reason=form.cleaned_data.get("change_reason", ""), by=request.user
                )
            return None
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
    readonly_fields = ("verdict", "evaluated_at", "bmi_display", "criteria_table", "gilbert_syndrome",
                       "gilbert_syndrome_to_record")  # fmt: skip
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
        ("Liver and kidney", {"fields": ("ast_x_uln", "alt_x_uln", "alp_x_uln", "bilirubin_x_uln", "egfr",
                                         "gilbert_syndrome")}),
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

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not request.user.has_perm("cohorts.add_gilbertsyndromediagnosis"):
            return fieldsets
        # Investigators get the same panel with the way to record the diagnosis.
        return [
            (name, {**options, "fields": tuple("gilbert_syndrome_to_record" if f == "gilbert_syndrome" else f
                                               for f in options["fields"])})
            for name, options in fieldsets
        ]  # fmt: skip

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
            participant=obj.participant, code=form.cleaned_data["code"], satisfied=obj.satisfied, note=obj.note,
            by=request.user,
        )  # fmt: skip
        obj.pk = saved.pk


class GilbertDiagnosisForm(forms.ModelForm):
    class Meta:
        model = GilbertSyndromeDiagnosis
        fields = ("participant", "documented", "note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "participant" in self.fields:
            self.fields["participant"].queryset = (
                Participant.objects.filter(status__in=services.SCREENING_STATUSES).order_by("trial", "screening_number")
            )  # fmt: skip
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
            participant=obj.participant, documented=obj.documented, note=form.cleaned_data.get("note") or "",
            by=request.user,
        )  # fmt: skip
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


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(AuditedAdmin):
    list_display = ("trial", "version", "title", "effective_from", "effective_to")
    list_filter = ("trial",)
    list_select_related = ("trial",)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ServiceRefusalMixin, AuditedAdmin):
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
                       "decision", "evaluability")  # fmt: skip
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

    @admin.display(description="Evaluable for dose escalation")
    def evaluability(self, obj):
        from safety.selectors import participant_evaluability  # composed here: the DLT data are safety's

        verdicts = participant_evaluability(obj.trial)
        rows = [
            (e.participant.study_id or str(e.participant), verdicts[e.participant_id])
            for e in obj.enrollments.select_related("participant").order_by("slot")
        ]
        if not rows:
            return "Nobody enrolled yet."
        return format_html_join(
            "", '<div style="{}">{}: {} — {}</div>',
            (("color:#ba2121;font-weight:bold" if v.needs_replacement else "", study_id,
              "NEEDS REPLACEMENT" if v.needs_replacement else v.status.replace("_", " "), v.reason)
             for study_id, v in rows),
        )  # fmt: skip


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


# --- infusion at the bedside, follow-up visits, protocol deviations --------------------------------
#
# Every write calls a service. When a service refuses (a hold, an expired product, a malformed rate),
# the transaction of the admin view is rolled back and the same form is shown again, with the nurse's
# input and the refusal in plain words (``ServiceRefusalMixin``).


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def _rate_guide(ranges: dict[int, tuple[Decimal, Decimal, int]], *, participant_id: int | None) -> str:
    """The protocol's drip-rate range and a small script that marks a rate outside it red as it is typed.

    ``ranges`` maps participant id → (min, max, drop factor); on the add page the script follows the
    participant chosen, on the change page it is the infusion's own.
    """
    data = {str(pk): [str(low), str(high), factor] for pk, (low, high, factor) in ranges.items()}
    text = "Choose the participant: her protocol's range applies."
    if participant_id in ranges:
        low, high, factor = ranges[participant_id]
        text = (f"Protocol rate {_plain(low)}–{_plain(high)} drops/min = {ml_per_hour(low, factor)}–"
                f"{ml_per_hour(high, factor)} mL/h with a {factor} drops/mL set. A rate outside it is saved, flagged "
                "and opens a protocol deviation.")  # fmt: skip
    elif len({tuple(v[:2]) for v in data.values()}) == 1:
        low, high, factor = next(iter(ranges.values()))
        text = f"Protocol rate {_plain(low)}–{_plain(high)} drops/min."
    return format_html(
        '<span id="rate-guide" data-ranges="{}" data-participant="{}">{}</span>{}',
        json.dumps(data), participant_id or "", text, _RATE_SCRIPT,
    )  # fmt: skip


_RATE_SCRIPT = mark_safe(  # a constant script: no user data in it
    """<script>
(function () {
  var guide = document.getElementById("rate-guide");
  if (!guide) { return; }
  var ranges = JSON.parse(guide.dataset.ranges || "{}");
  function range() {
    var chosen = document.querySelector("select[name=participant]");
    var key = guide.dataset.participant || (chosen && chosen.value);
    return ranges[key] || null;
  }
  function check(input) {
    var note = input.parentNode.querySelector(".rate-warning");
    if (!note) {
      note = document.createElement("div");
      note.className = "rate-warning";
      note.setAttribute("role", "alert");
      input.parentNode.appendChild(note);
    }
    var raw = input.value.trim(), limits = range(), text = "";
    if (raw !== "") {
      var value = Number(raw);
      if (!/^[0-9]+([.][0-9]{1,2})?$/.test(raw) || !(value > 0)) {
        text = "Not a positive number of drops/min: it will be refused.";
      } else if (limits && (value < Number(limits[0]) || value > Number(limits[1]))) {
        text = "Outside the protocol's " + limits[0] + "\u2013" + limits[1] + " drops/min: it will be saved, " +
          "flagged, and a protocol deviation opened.";
      }
    }
    input.style.borderColor = text ? "#ba2121" : "";
    input.style.color = text ? "#ba2121" : "";
    note.textContent = text;
    note.style.color = "#ba2121";
    note.style.fontWeight = "bold";
  }
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.name && /drops_per_minute$/.test(target.name)) { check(target); }
  });
})();
</script>"""
)


class DripRateReadingForm(forms.ModelForm):
    class Meta:
        model = DripRateReading
        fields = ("observed_at", "drops_per_minute")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "drops_per_minute" in self.fields:
            self.fields["drops_per_minute"] = forms.CharField(
                label="Drops/min", max_length=20, widget=forms.TextInput(attrs={"size": 6, "inputmode": "decimal"})
            )
        if "observed_at" in self.fields and not self.instance.pk:
            # Prefilled with now; the hidden initial keeps an untouched extra row from counting as typed in.
            self.fields["observed_at"].initial = timezone.now
            self.fields["observed_at"].show_hidden_initial = True

    def clean_drops_per_minute(self):
        try:
            return services._rate(self.cleaned_data["drops_per_minute"])
        except DomainError as refused:
            raise ValidationError(refused.message, code=refused.code) from None


class DripRateReadingInline(admin.TabularInline):
    model = DripRateReading
    form = DripRateReadingForm
    fields = ("observed_at", "drops_per_minute", "ml_h", "flag")
    readonly_fields = ("ml_h", "flag")
    extra = 1
    can_delete = False
    verbose_name = "drip-rate reading"

    def has_change_permission(self, request, obj=None):
        return False  # readings are kept as observed; a wrong one is corrected by a new reading

    @admin.display(description="mL/h")
    def ml_h(self, reading):
        return reading.ml_per_hour if reading.pk else "—"

    @admin.display(description="Protocol")
    def flag(self, reading):
        if not reading.pk:
            return ""
        if not reading.out_of_range:
            return "✔ in range"
        deviation = getattr(reading, "deviation", None)
        return format_html(
            '<strong style="color:#ba2121">✘ outside {}–{}</strong>{}', _plain(reading.rate_min),
            _plain(reading.rate_max), f" (deviation #{deviation.pk})" if deviation else "",
        )  # fmt: skip


class VitalSignsInline(admin.TabularInline):
    model = VitalSigns
    fields = ("timepoint", "measured_at", "systolic_bp", "diastolic_bp", "heart_rate", "temperature_c", "spo2_pct",
              "respiratory_rate")  # fmt: skip
    extra = 1
    can_delete = False
    verbose_name_plural = "vital signs (before, during, after)"

    def has_change_permission(self, request, obj=None):
        return False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.base_fields["measured_at"].initial = timezone.now
        formset.form.base_fields["measured_at"].show_hidden_initial = True  # an untouched extra row stays empty
        formset.form.base_fields["timepoint"].initial = VitalSigns.Timepoint.DURING if obj else "before"
        return formset


class InterruptionInline(admin.TabularInline):
    model = InfusionInterruption
    fields = ("stopped_at", "restarted_at", "reason")
    extra = 0
    can_delete = False

    def has_change_permission(self, request, obj=None):
        return False  # an open interruption is resumed with “Restart at” above


class CohortListFilter(admin.RelatedFieldListFilter):
    """The cohort filter with each cohort's dose in one query (its label names the dose)."""

    def field_choices(self, field, request, model_admin):
        return [(c.pk, str(c)) for c in Cohort.objects.select_related("dose_level").order_by("trial", "sequence")]


class InfusionStartForm(ServiceRefusalForm):
    """What the nurse enters to start an infusion; the service checks and records it."""

    cells_in_product = forms.IntegerField(
        label="Cells in the product", required=False, min_value=1,
        help_text="Exact count from the product label; empty = the cohort's dose level.",
    )  # fmt: skip
    set_drop_factor = forms.IntegerField(
        label="Giving set (drops/mL)", required=False, help_text="Empty = the trial's default giving set."
    )
    volume_to_give_ml = forms.DecimalField(label="Volume to give (mL)", required=False, max_digits=7, decimal_places=1)

    class Meta:
        model = Infusion
        fields = ("participant", "started_at", "product_lot", "product_expiry", "premedication")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "participant" in self.fields:
            self.fields["participant"].queryset = (
                Participant.objects.filter(status=Participant.Status.ENROLLED, replaced=False)
                .select_related("trial").order_by("study_id")
            )  # fmt: skip
            self.fields["participant"].help_text = "Enrolled participants not infused yet."
        if "started_at" in self.fields:
            self.fields["started_at"].initial = timezone.now


class InfusionFinishForm(ServiceRefusalForm):
    """The bedside form of a running infusion: readings and vitals below; finish or resume here."""

    OUTCOMES = (("", "Still running"), ("complete", "Completed: product given in full"),
                ("stop_early", "Stopped early"))  # fmt: skip

    outcome = forms.ChoiceField(label="Finish", choices=OUTCOMES, required=False)
    finished_at = forms.SplitDateTimeField(label="Ended at", required=False, widget=admin.widgets.AdminSplitDateTime)
    cells_given = forms.IntegerField(label="Cells given", required=False, min_value=0)
    volume_given_ml = forms.DecimalField(label="Volume given (mL)", required=False, max_digits=7, decimal_places=1)
    why_stopped = forms.CharField(label="Reason stopped early", required=False,
                                  widget=forms.Textarea(attrs={"rows": 2}))  # fmt: skip
    restart_at = forms.SplitDateTimeField(label="Restart at", required=False, widget=admin.widgets.AdminSplitDateTime,
                                     help_text="Resume an interrupted infusion.")  # fmt: skip
    confirm_implausible_rate = forms.BooleanField(
        label="Confirm an implausible average rate", required=False,
        help_text=f"Only after the average rate was refused as implausible (above {IMPLAUSIBLE_RATE_FACTOR} × the "
        "protocol maximum) and you checked the end time, interruptions, volume and giving set: it is then saved as "
        "entered, flagged, and a major deviation opens.",
    )  # fmt: skip

    class Meta:
        model = Infusion
        fields = ()

    def clean(self):
        cleaned = super().clean()
        outcome = cleaned.get("outcome")
        if outcome:
            for name in ("finished_at", "cells_given", "volume_given_ml"):
                if cleaned.get(name) is None and name not in self.errors:
                    self.add_error(name, "Required to finish the infusion.")
        if outcome == "stop_early" and not (cleaned.get("why_stopped") or "").strip():
            self.add_error("why_stopped", "Give the reason the infusion was stopped.")
        return cleaned


@admin.register(Infusion)
class InfusionAdmin(ServiceRefusalMixin, AuditedAdmin):
    list_display = ("participant", "cohort_dose", "status", "started_at", "ended_at", "cells", "rate_flags",
                    "administered_by")  # fmt: skip
    list_filter = ("status", "cohort__trial", ("cohort", CohortListFilter))
    search_fields = ("participant__study_id", "product_lot")
    list_select_related = ("participant", "cohort__dose_level", "administered_by")
    date_hierarchy = "started_at"
    inlines = (DripRateReadingInline, VitalSignsInline, InterruptionInline)
    START_FIELDS = ("participant", "started_at", "product_lot", "product_expiry", "cells_in_product",
                    "set_drop_factor", "volume_to_give_ml", "premedication")  # fmt: skip
    RECORD_FIELDS = ("participant", "cohort", "dose_level", "status", "started_at", "ended_at", "product_lot",
                     "product_expiry", "cells_planned", "cells_administered", "volume_planned_ml", "volume_ml",
                     "drop_factor", "derived", "average_rate", "premedication", "stop_reason",
                     "administered_by")  # fmt: skip

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(flagged_count=Count("readings", filter=Q(readings__out_of_range=True)))
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = InfusionStartForm if obj is None else InfusionFinishForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                ("Hold: who can be infused now", {"fields": ["holds"]}),
                ("Product and start", {"fields": list(self.START_FIELDS)}),
                ("Drip rate", {"fields": ["rate_guide"]}),
            ]
        fieldsets = [("Infusion", {"fields": list(self.RECORD_FIELDS)}), ("Drip rate", {"fields": ["rate_guide"]})]
        if self.has_change_permission(request, obj):
            finish = ["outcome", "finished_at", "cells_given", "volume_given_ml", "why_stopped",
                      "confirm_implausible_rate", "restart_at"]  # fmt: skip
            fieldsets.append(("Finish or resume", {"fields": finish}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("holds", "rate_guide")
        return (*self.RECORD_FIELDS, "rate_guide")

    def has_change_permission(self, request, obj=None):
        # A finished infusion is a record: it is read, not edited (corrections are new audited records).
        return super().has_change_permission(request, obj) and (obj is None or not obj.is_finished)

    # --- list columns -----------------------------------------------------------------------------

    @admin.display(description="Cohort / dose")
    def cohort_dose(self, obj):
        return f"{obj.cohort.sequence} — {obj.cohort.dose_level.label}"

    @admin.display(description="Cells given")
    def cells(self, obj):
        return obj.cells_administered_display or "—"

    @admin.display(description="Rate off protocol")
    def rate_flags(self, obj):
        parts = [f"{obj.flagged_count} reading(s)"] if obj.flagged_count else []
        if obj.average_rate_out_of_range:
            parts.append(f"average {obj.average_drops_per_minute} drops/min")
        return format_html('<strong style="color:#ba2121">{}</strong>', ", ".join(parts)) if parts else "—"

    # --- read-only panels -------------------------------------------------------------------------

    @admin.display(description="Derived")
    def derived(self, obj):
        minutes = obj.duration_minutes
        if minutes is None:
            return "Running"
        return f"{minutes:.0f} min running time (interruptions excluded); {obj.average_ml_per_hour or '—'} mL/h average"

    @admin.display(description="Average rate")
    def average_rate(self, obj):
        """volume × drop factor ÷ running minutes, checked against the protocol range copied when it finished."""
        if not obj.is_finished:
            return "Computed when the infusion finishes"
        rate = obj.average_drops_per_minute
        if rate is None:
            return "— (no volume given)" if obj.volume_ml == 0 else "— (not computed)"
        if not obj.average_rate_out_of_range:
            return f"{rate} drops/min ✔ in range"
        deviation = obj.deviations.filter(category="infusion_rate", source="system", drip_rate_reading=None).first()
        return format_html(
            '<strong style="color:#ba2121">{} drops/min ✘ outside {}–{}</strong>{}{}', rate,
            _plain(obj.average_rate_min), _plain(obj.average_rate_max),
            f" (deviation #{deviation.pk})" if deviation else "",
            " — confirmed as entered although implausible" if obj.implausible_rate_confirmed else "",
        )  # fmt: skip

    @admin.display(description="Protocol rate")
    def rate_guide(self, obj):
        if obj is not None and obj.pk:
            trial = obj.trial
            return _rate_guide({obj.participant_id: (trial.infusion_rate_min, trial.infusion_rate_max,
                                                     obj.drop_factor)}, participant_id=obj.participant_id)  # fmt: skip
        ranges = {
            p.pk: (p.trial.infusion_rate_min, p.trial.infusion_rate_max, p.trial.default_drop_factor)
            for p in Participant.objects.filter(status=Participant.Status.ENROLLED).select_related("trial")
        }
        return _rate_guide(ranges, participant_id=None)

    @admin.display(description="Holds now")
    def holds(self, obj):
        rows = []
        cohorts = Cohort.objects.filter(state__in=("open", "full", "paused")).select_related("trial", "dose_level")
        for cohort in cohorts:
            if cohort.state == Cohort.State.PAUSED:
                rows.append((str(cohort), "Paused by a stopping rule: no infusion until the committee resumes it."))
                continue
            for ready in selectors.cohort_infusion_readiness(cohort=cohort):
                who = f"{ready.participant}" + (" (sentinel)" if ready.is_sentinel else "")
                rows.append((f"{cohort} — {who}", ready.hold.message if ready.hold else "Can be infused now."))
        if not rows:
            return "Nobody is waiting for an infusion."
        body = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", rows)
        return format_html("<table><tr><th>Participant</th><th>Until when and why</th></tr>{}</table>", body)

    # --- writes: every one through a service -------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            infusion = services.infusion_start(
                participant=data["participant"], by=request.user, started_at=data["started_at"],
                product_lot=data["product_lot"], product_expiry=data["product_expiry"],
                cells_planned=data.get("cells_in_product"), drop_factor=data.get("set_drop_factor"),
                volume_ml=data.get("volume_to_give_ml"), premedication=data.get("premedication") or "",
            )  # fmt: skip
            obj.pk = infusion.pk
            obj.refresh_from_db()
        elif data.get("restart_at"):
            services.infusion_resume(infusion=obj, restarted_at=data["restart_at"], by=request.user)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change)
        data = form.cleaned_data
        outcome = data.get("outcome") if change else ""
        if outcome:
            finish = services.infusion_complete if outcome == "complete" else services.infusion_stop_early
            extra = {"reason": data["why_stopped"]} if outcome == "stop_early" else {}
            finish(infusion=form.instance, ended_at=data["finished_at"], cells_administered=data["cells_given"],
                   volume_ml=data["volume_given_ml"], by=request.user,
                   confirm_implausible_rate=bool(data.get("confirm_implausible_rate")), **extra)  # fmt: skip
            self.message_user(request, "Infusion finished: the DLT window started and the follow-up visits were "
                              "planned.", messages.SUCCESS)  # fmt: skip
            deviation = ProtocolDeviation.objects.filter(infusion=form.instance, category="dose").first()
            if deviation is not None:
                self.message_user(request, f"Dose outside the protocol: major deviation #{deviation.pk} opened. "
                                  f"{deviation.description}", messages.WARNING)  # fmt: skip
            deviation = ProtocolDeviation.objects.filter(infusion=form.instance, category="infusion_rate",
                                                         source="system", drip_rate_reading=None).first()  # fmt: skip
            if deviation is not None:
                self.message_user(request, "Average rate outside the protocol: "
                                  f"{deviation.get_severity_display().lower()} deviation #{deviation.pk} opened. "
                                  f"{deviation.description}",
                                  messages.WARNING)  # fmt: skip

    def save_formset(self, request, form, formset, change):
        infusion = form.instance
        # What the admin's change message reads; the services below create the rows.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.extra_forms:
            if not inline_form.has_changed() or not inline_form.cleaned_data:
                continue
            data = inline_form.cleaned_data
            if formset.model is DripRateReading:
                reading = services.drip_rate_record(
                    infusion=infusion,
                    observed_at=data["observed_at"],
                    drops_per_minute=data["drops_per_minute"],
                    by=request.user,
                )
                formset.new_objects.append(reading)
                if reading.out_of_range:
                    deviation = ProtocolDeviation.objects.get(drip_rate_reading=reading)
                    self.message_user(request, f"{deviation.description} It is flagged and deviation #{deviation.pk} "
                                      f"({deviation.get_severity_display().lower()}) was opened.",
                                      messages.WARNING)  # fmt: skip
            elif formset.model is VitalSigns:
                values = {name: data.get(name) for name in services.VITAL_FIELDS}
                formset.new_objects.append(services.vital_signs_record(
                    infusion=infusion, timepoint=data["timepoint"], values=values, measured_at=data["measured_at"],
                    by=request.user,
                ))  # fmt: skip
            elif formset.model is InfusionInterruption:
                formset.new_objects.append(services.infusion_interrupt(
                    infusion=infusion, stopped_at=data["stopped_at"], reason=data["reason"], by=request.user
                ))  # fmt: skip
                if data.get("restarted_at"):
                    services.infusion_resume(infusion=infusion, restarted_at=data["restarted_at"], by=request.user)


class VisitOutcomeForm(ServiceRefusalForm):
    outcome = forms.ChoiceField(choices=(("completed", "Done"), ("missed", "Missed")), widget=forms.RadioSelect)
    visit_date = forms.DateField(label="Done on", required=False, widget=admin.widgets.AdminDateWidget,
                                 help_text="The site's date.")  # fmt: skip
    why_missed = forms.CharField(label="Why missed", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = FollowUpVisit
        fields = ()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("outcome") == "completed" and not cleaned.get("visit_date"):
            self.add_error("visit_date", "Give the date the visit was done.")
        if cleaned.get("outcome") == "missed" and not (cleaned.get("why_missed") or "").strip():
            self.add_error("why_missed", "Give the reason the visit was missed.")
        return cleaned


@admin.register(FollowUpVisit)
class FollowUpVisitAdmin(ServiceRefusalMixin, AuditedAdmin):
    form = VisitOutcomeForm
    list_display = ("participant", "name", "target_date", "window", "status", "done_on", "late")
    list_filter = ("status", "code", ("infusion__cohort", CohortListFilter))
    search_fields = ("participant__study_id",)
    list_select_related = ("participant", "infusion__cohort")
    date_hierarchy = "target_date"
    RECORD_FIELDS = ("participant", "name", "day_offset", "target_date", "window_start", "window_end", "status",
                     "done_on", "missed_reason", "recorded_by", "recorded_at")  # fmt: skip
    readonly_fields = RECORD_FIELDS

    def get_fieldsets(self, request, obj=None):
        fieldsets = [("Visit", {"fields": list(self.RECORD_FIELDS)})]
        if obj is not None and self.has_change_permission(request, obj):
            fieldsets.append(("Record the outcome", {"fields": ["outcome", "visit_date", "why_missed"]}))
        return fieldsets

    def has_add_permission(self, request):
        return False  # visits are planned by completing the infusion

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (
            obj is None or obj.status == FollowUpVisit.Status.SCHEDULED
        )

    @admin.display(description="Window")
    def window(self, obj):
        return f"{obj.window_start} to {obj.window_end}"

    @admin.display(description="Outside window", boolean=True)
    def late(self, obj):
        return obj.out_of_window if obj.done_on else None

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if data["outcome"] == "completed":
            visit = services.visit_complete(visit=obj, on=data["visit_date"], by=request.user)
            if visit.out_of_window:
                self.message_user(request, f"{visit.name} was done outside its window ({visit.window_start} to "
                                  f"{visit.window_end}): a minor deviation was opened.", messages.WARNING)  # fmt: skip
        else:
            services.visit_miss(visit=obj, reason=data["why_missed"], by=request.user)

    def save_related(self, request, form, formsets, change):
        pass  # no inlines; the service wrote everything


class DeviationForm(ServiceRefusalForm, ReasonForChangeForm):
    close = forms.BooleanField(label="Close this deviation", required=False,
                               help_text="Needs the corrective action. A closed deviation is final.")  # fmt: skip

    class Meta:
        model = ProtocolDeviation
        fields = ("participant", "category", "severity", "description", "occurred_on", "corrective_action",
                  "infusion", "visit")  # fmt: skip


@admin.register(ProtocolDeviation)
class ProtocolDeviationAdmin(ServiceRefusalMixin, AuditedAdmin):
    form = DeviationForm
    list_display = ("detected_at", "participant", "category", "severity", "source", "status", "occurred_on",
                    "summary")  # fmt: skip
    list_filter = ("status", "severity", "category", "source", "trial")
    search_fields = ("participant__study_id", "description")
    list_select_related = ("participant", "detected_by")
    date_hierarchy = "detected_at"
    raw_id_fields = ("infusion", "visit")

    def get_fieldsets(self, request, obj=None):
        what = ["participant", "category", "severity", "description", "occurred_on", "infusion", "visit"]
        detected = ["source", "detected_by", "detected_at", "drip_rate_reading"]
        fieldsets = [("Deviation", {"fields": what}), ("Corrective action", {"fields": ["corrective_action"]})]
        if obj is not None:
            fieldsets.insert(1, ("Detected", {"fields": [*detected, "status", "closed_at", "closed_by"]}))
            if self.has_change_permission(request, obj):
                fieldsets[-1][1]["fields"] = ["corrective_action", "close"]
                fieldsets.append(self.reason_section)
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("participant", "category", "occurred_on", "infusion", "visit", "source", "detected_by",
                "detected_at", "drip_rate_reading", "status", "closed_at", "closed_by")  # fmt: skip

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (
            obj is None or obj.status == ProtocolDeviation.Status.OPEN
        )

    @admin.display(description="Description")
    def summary(self, obj):
        return obj.description[:90] + ("…" if len(obj.description) > 90 else "")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            deviation = services.deviation_record(
                participant=data["participant"], category=data["category"], severity=data["severity"],
                description=data["description"], occurred_on=data["occurred_on"], by=request.user,
                corrective_action=data.get("corrective_action") or "", infusion=data.get("infusion"),
                visit=data.get("visit"),
            )  # fmt: skip
            obj.pk = deviation.pk
            return
        services.deviation_update(
            deviation=obj, by=request.user, reason=data.get("change_reason", ""), severity=data.get("severity"),
            description=data.get("description"), corrective_action=data.get("corrective_action"),
            close=bool(data.get("close")),
        )  # fmt: skip

    def save_related(self, request, form, formsets, change):
        pass


# The participant's page shows her infusion, DLT window and visits as one timeline (registered again
# with the timeline added, so the screening and enrollment admin above stays as it is).

TIMELINE_TONES = {"ok": "#1e7e34", "warn": "#ba2121", "due": "#b36b00", "": "inherit"}


class ParticipantTimelineAdmin(ParticipantAdmin):
    readonly_fields = (*ParticipantAdmin.readonly_fields, "timeline")

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets.insert(2, ("Infusion and follow-up", {"fields": ["timeline"]}))
        return fieldsets

    @admin.display(description="Timeline")
    def timeline(self, obj):
        if obj is None or not obj.pk:
            return "—"
        from safety.selectors import participant_ae_timeline

        entries = selectors.participant_timeline(obj)
        rows = [(TIMELINE_TONES[e.tone], e.label, e.when, e.window, e.status) for e in entries]
        # Adverse events on the same date axis as the infusion, the DLT window and the visits.
        for ae in participant_ae_timeline(obj):
            alarming = ae["worst_grade"] >= 3 or ae["serious"] or ae["dlt_status"] in ("candidate", "confirmed")
            rows.append((
                TIMELINE_TONES["warn" if alarming else ""],
                f"Adverse event: {ae['term']}, grade {ae['worst_grade']}" + (", serious" if ae["serious"] else ""),
                f"{ae['onset']} – {ae['resolution'] or 'ongoing'}",
                f"day {ae['onset_day']} of the DLT window" if ae["in_dlt_window"] else "",
                ae["dlt_status_display"],
            ))  # fmt: skip
        rows.sort(key=lambda row: (row[2] or row[3])[:10])
        if obj.status == Participant.Status.ENROLLED and not obj.replaced:
            hold = selectors.infusion_hold(participant=obj)
            rows.append((TIMELINE_TONES["warn" if hold else "ok"], "Infusion", "", "",
                         hold.message if hold else "Can be infused now."))  # fmt: skip
        if not rows:
            return "Not enrolled yet."
        body = format_html_join("", '<tr style="color:{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>', rows)
        return format_html("<table><tr><th>What</th><th>When</th><th>Window</th><th>Status</th></tr>{}</table>", body)


admin.site.unregister(Participant)
admin.site.register(Participant, ParticipantTimelineAdmin)
