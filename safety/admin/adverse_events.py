"""Admin for adverse events and DLT decisions.

Fast entry for site staff: one page grouped the way a coordinator thinks (Event / Grade and
seriousness / Causality / Outcome / Reporting), autocomplete for the participant and the CTCAE term,
radio buttons for grade and relationship, awareness time pre-filled with now.

Every write calls ``safety.services``: saving the add page calls ``adverse_event_record``, an edit
``adverse_event_update`` with the reason for change, the DLT actions ``dlt_decide``. The form only
validates its fields; ``save_model`` calls the service, and a refused write (``DomainError``) comes
back as errors on the form with everything the user typed still there (``core.admin.ServiceRefusalMixin``);
actions report refusals with ``message_user``. Never a 500.

Changelists take a constant number of queries: joins through ``list_select_related`` and the
selectors, the cohort as a subquery, clocks prefetched.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Exists, OuterRef, Subquery
from django.forms.models import construct_instance
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from cohorts.admin import DataLockAdminMixin
from cohorts.models import Cohort, Enrollment
from core.admin import AuditedAdmin, ReasonForChangeForm, RefusalClean, ServiceRefusalMixin, action_form_page
from core.errors import DomainError
from core.paginators import LargeTablePaginator
from safety import selectors, services
from safety.admin.clocks import OVERDUE, clock_overdue, local_time
from safety.models import AdverseEvent, ReportingClock

GRADE_CHOICES = [
    (1, "1 — Mild"),
    (2, "2 — Moderate"),
    (3, "3 — Severe"),
    (4, "4 — Life-threatening"),
    (5, "5 — Death"),
]


class AdverseEventForm(RefusalClean, ReasonForChangeForm):
    """The AE page's form: it validates its fields only. The service (called by ``save_model``) validates
    the rules (grade 5 is fatal, serious needs a criterion, onset after consent…) and saves in one
    transaction; a refusal comes back as errors on this form (``show_refusal``)."""

    grade = forms.TypedChoiceField(label="CTCAE grade", choices=GRADE_CHOICES, coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "information_received_at" in self.fields:
            # Each follow-up says when its own information arrived: never the previous one's time.
            self.initial["information_received_at"] = None
            self.fields["information_received_at"].required = False

    def _post_clean(self):
        # Model and constraint validation is the service's (with clear messages), not ModelForm's. The
        # service itself runs in AdverseEventAdmin.save_model, never during validation.
        try:
            self.instance = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        except ValidationError as exc:
            self._update_errors(exc)

    def show_refusal(self, refused: DomainError) -> None:
        """Every message on its field (a follow-up's ``reason`` on the reason for change), and the
        message on the form unless the fields say all of it."""
        attached = False
        for name, problems in refused.fields.items():
            target = {"reason": "change_reason", NON_FIELD_ERRORS: None}.get(name, name)
            if target is not None and target not in self.fields:
                target = None
            for problem in problems:
                self.add_error(target, problem)
                attached = attached or target is not None
        if refused.code != "invalid" or not attached:
            self.add_error(None, refused.message)


class WorstGradeFilter(admin.SimpleListFilter):
    title = "worst grade"
    parameter_name = "worst"

    def lookups(self, request, model_admin):
        return [("3+", "Grade 3 or higher"), *((str(g), label) for g, label in GRADE_CHOICES)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "3+":
            return queryset.filter(worst_grade__gte=3)
        if value in {"1", "2", "3", "4", "5"}:
            return queryset.filter(worst_grade=int(value))
        return queryset


class CohortFilter(admin.SimpleListFilter):
    """The participant's enrollment cohort (one query for the choices, whatever the list's size)."""

    title = "cohort"
    parameter_name = "cohort"

    def lookups(self, request, model_admin):
        cohorts = Cohort.objects.select_related("trial", "dose_level").order_by("trial__registry_id", "sequence")
        return [(str(c.pk), f"{c.trial.registry_id} · cohort {c.sequence} ({c.dose_level.label})") for c in cohorts]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(participant__enrollments__cohort_id=int(value))
        return queryset


class OverdueClockFilter(admin.SimpleListFilter):
    title = "expedited report"
    parameter_name = "report"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("due", "Due, not yet overdue"), ("none", "Nothing due")]

    def queryset(self, request, queryset):
        now = timezone.now()
        open_clocks = ReportingClock.objects.filter(adverse_event=OuterRef("pk"), done_at__isnull=True)
        if self.value() == "overdue":
            return queryset.filter(Exists(open_clocks.filter(due_at__lt=now)))
        if self.value() == "due":
            return queryset.filter(Exists(open_clocks)).exclude(Exists(open_clocks.filter(due_at__lt=now)))
        if self.value() == "none":
            return queryset.exclude(Exists(open_clocks))
        return queryset


class DltDecisionForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        help_text="Why the event is (not) dose-limiting; kept with the decision and shown to the committee.",
    )


@admin.register(AdverseEvent)
class AdverseEventAdmin(DataLockAdminMixin, ServiceRefusalMixin, AuditedAdmin):
    form = AdverseEventForm
    list_display = (
        "onset_date",
        "participant_label",
        "cohort_label",
        "term_label",
        "grade",
        "worst_grade",
        "serious",
        "relationship",
        "dlt_label",
        "reporting",
    )
    list_display_links = ("onset_date", "term_label")
    list_filter = (WorstGradeFilter, "serious", CohortFilter, "dlt_status", OverdueClockFilter)
    list_select_related = ("participant__site", "participant__trial", "ctcae_term")
    paginator = LargeTablePaginator  # the page's keys sorted on the event table alone; the count estimated
    show_full_result_count = False
    search_fields = (
        "verbatim_term",
        "ctcae_term__term",
        "ctcae_term_text",
        "participant__study_id",
        "participant__screening_number",
    )
    autocomplete_fields = ("participant", "ctcae_term")
    radio_fields = {"relationship": admin.HORIZONTAL}
    readonly_fields = (
        "worst_grade",
        "dlt_status",
        "dlt_reason",
        "dlt_decided_by",
        "dlt_decided_at",
        "reported_by",
        "created_at",
        "clock_table",
    )
    actions = ("confirm_dlt", "reject_dlt")

    _event = ("verbatim_term", "ctcae_term", "ctcae_term_text", "onset_date", "resolution_date", "infusion_reaction")
    _criteria = (
        ("sae_death", "sae_life_threatening", "sae_hospitalisation"),
        ("sae_disability", "sae_congenital_anomaly", "sae_other_important"),
    )
    add_fieldsets = (
        ("Event", {"fields": ("participant", *_event)}),
        (
            "Grade and seriousness",
            {
                "fields": ("grade", "serious", *_criteria),
                "description": "Serious (ICH E2A) needs at least one criterion.",
            },
        ),
        ("Causality", {"fields": ("relationship", "expected")}),
        ("Outcome", {"fields": ("outcome", "action_taken")}),
        (
            "Reporting",
            {
                "fields": ("site_aware_at",),
                "description": "A serious event starts the expedited-reporting clock from this time.",
            },
        ),
    )
    fieldsets = (
        ("Event", {"fields": ("participant", *_event)}),
        ("Grade and seriousness", {"fields": ("grade", "worst_grade", "serious", *_criteria)}),
        ("Causality", {"fields": ("relationship", "expected")}),
        ("Outcome", {"fields": ("outcome", "action_taken")}),
        (
            "Reporting",
            {
                "fields": ("site_aware_at", "information_received_at", "reported_by", "created_at", "clock_table"),
                "description": "Latest information received at: when the site received this follow-up "
                "(empty: now). A clock the follow-up starts counts from then.",
            },
        ),
        ("Dose-limiting toxicity", {"fields": ("dlt_status", "dlt_reason", "dlt_decided_by", "dlt_decided_at")}),
    )

    def get_queryset(self, request):
        # A participant has one enrollment in her trial; no default ordering in the per-row subquery.
        cohort = (
            Enrollment.objects.filter(participant=OuterRef("participant")).order_by().values("cohort__sequence")[:1]
        )
        return selectors.adverse_event_list().annotate(cohort_sequence=Subquery(cohort))

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "participant") if obj else self.readonly_fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("site_aware_at", timezone.localtime(timezone.now()).replace(second=0, microsecond=0))
        return initial

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in services.AE_FIELDS if name in form.cleaned_data}
        if change:
            event = services.adverse_event_update(
                event=obj,
                values=values,
                reason=form.cleaned_data.get("change_reason", ""),
                by=request.user,
                information_received_at=form.cleaned_data.get("information_received_at"),
            )
        else:
            event = services.adverse_event_record(
                participant=form.cleaned_data["participant"], values=values, by=request.user
            )
        obj.pk = event.pk
        obj._state.adding = False
        for name in ("worst_grade", "dlt_status", "dlt_reason", "reported_by_id", "created_at"):
            setattr(obj, name, getattr(event, name))
        self._tell_consequences(request, event)

    def save_related(self, request, form, formsets, change):
        form.save_m2m()  # nothing else: the service wrote the event and its history

    def _tell_consequences(self, request, event: AdverseEvent) -> None:
        if event.dlt_status == AdverseEvent.DltStatus.CANDIDATE:
            self.message_user(
                request,
                f"DLT candidate: {event.dlt_reason} An investigator must confirm or reject it.",
                messages.WARNING,
            )
        for clock in event.clocks.filter(done_at__isnull=True):
            self.message_user(
                request,
                f"{clock.get_kind_display()} due by {local_time(clock.due_at)} ({clock.recipient}).",
                messages.WARNING,
            )
        paused = Cohort.objects.filter(trial_id=event.participant.trial_id, state=Cohort.State.PAUSED).first()
        if paused is not None:
            self.message_user(
                request,
                f"Stopping rule: {paused} is paused. Enrollment and infusion are refused "
                "until the safety review committee resumes it.",
                messages.ERROR,
            )

    # --- list columns ---

    @admin.display(description="Participant", ordering="participant__study_id")
    def participant_label(self, obj):
        return obj.participant.study_id or str(obj.participant)

    @admin.display(description="Cohort", ordering="cohort_sequence")
    def cohort_label(self, obj):
        return obj.cohort_sequence or "—"

    @admin.display(description="Event (CTCAE term)")
    def term_label(self, obj):
        term = obj.ctcae_term.term if obj.ctcae_term else obj.ctcae_term_text
        return f"{obj.verbatim_term} ({term})" if term and term.lower() != obj.verbatim_term.lower() else term

    @admin.display(description="DLT", ordering="dlt_status")
    def dlt_label(self, obj):
        if obj.dlt_status == AdverseEvent.DltStatus.CANDIDATE:
            return format_html('<strong style="color:#b35900">{}</strong>', obj.get_dlt_status_display())
        if obj.dlt_status == AdverseEvent.DltStatus.NOT_CANDIDATE:
            return "—"
        return obj.get_dlt_status_display()

    @admin.display(description="Expedited reports")
    def reporting(self, obj):
        now = timezone.now()
        clocks = list(obj.clocks.all())  # prefetched by the selector
        if not clocks:
            return "—"
        parts = []
        for clock in clocks:
            label = f"{clock.get_kind_display()}: "
            if clock.done_at:
                parts.append(format_html("{}done {}", label, local_time(clock.done_at)))
            elif clock_overdue(clock, now):
                parts.append(format_html(OVERDUE, f"{label}OVERDUE since {local_time(clock.due_at)}"))
            else:
                parts.append(format_html("{}due by {}", label, local_time(clock.due_at)))
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts))

    @admin.display(description="Expedited-reporting clocks")
    def clock_table(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        now = timezone.now()
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c.get_kind_display(),
                    local_time(c.due_at),
                    c.recipient,
                    format_html(OVERDUE, "OVERDUE")
                    if clock_overdue(c, now)
                    else (local_time(c.done_at) if c.done_at else "open"),
                    f"{c.reported_to} ({c.done_by})" if c.done_at else "",
                )
                for c in obj.clocks.select_related("done_by")
            ),
        )
        if not rows:
            return "No expedited report is due (the event is not serious)."
        return format_html(
            "<table><tr><th>Report</th><th>Due by</th><th>To</th><th>Done</th><th>Reported to (by)</th></tr>{}</table>",
            rows,
        )

    # --- DLT decisions (investigators) ---

    def has_decide_dlt_permission(self, request):
        return request.user.has_perm("safety.decide_dlt")

    @admin.action(description="Confirm DLT (investigator; asks for the reason)", permissions=["decide_dlt"])
    def confirm_dlt(self, request, queryset):
        return self._decide(request, queryset, confirm=True)

    @admin.action(description="Reject DLT (investigator; asks for the reason)", permissions=["decide_dlt"])
    def reject_dlt(self, request, queryset):
        return self._decide(request, queryset, confirm=False)

    def _decide(self, request, queryset, *, confirm: bool):
        verb = "confirm" if confirm else "reject"
        candidates = [e for e in queryset if e.dlt_status == AdverseEvent.DltStatus.CANDIDATE]
        skipped = queryset.count() - len(candidates)
        if not candidates:
            self.message_user(
                request, "None of the selected events is a DLT candidate: nothing to decide.", messages.WARNING
            )
            return None
        form = DltDecisionForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            for event in candidates:
                event.label = f"{event.participant.study_id or event.participant}: {event} — {event.dlt_reason}"
            return action_form_page(
                self,
                request,
                title=f"{verb.capitalize()} DLT",
                form=form,
                objects=candidates,
                action=f"{verb}_dlt",
                submit=f"{verb.capitalize()} DLT",
                intro=f"You are about to {verb} {len(candidates)} DLT candidate(s) as investigator "
                f"{request.user.get_full_name() or request.user}."
                + (f" {skipped} selected event(s) are not candidates and are left as they are." if skipped else ""),
            )
        for event in candidates:
            try:
                decided = services.dlt_decide(
                    event=event, confirm=confirm, reason=form.cleaned_data["reason"], by=request.user
                )
            except DomainError as refused:
                self.message_user(request, f"{event}: not decided: {refused.message}", messages.ERROR)
            else:
                self.message_user(request, f"{decided}: {decided.get_dlt_status_display()}.", messages.SUCCESS)
        trials = {e.participant.trial_id for e in candidates}
        for paused in Cohort.objects.filter(trial_id__in=trials, state=Cohort.State.PAUSED).select_related(
            "dose_level"
        ):
            self.message_user(
                request, f"Stopping rule: {paused} is paused; an unscheduled safety review is open.", messages.ERROR
            )
        return None
