"""The participant's page: who she is, her enrollment, and her infusion and follow-up timeline."""

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from cohorts import selectors, services
from cohorts.models import (
    Cohort,
    Enrollment,
    Participant,
)
from cohorts.ports import safety_reader
from core.admin import AuditedAdmin, ServiceRefusalMixin
from core.errors import DomainError
from core.paginators import LargeTablePaginator

TIMELINE_TONES = {"ok": "#1e7e34", "warn": "#ba2121", "due": "#b36b00", "": "inherit"}


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
    paginator = LargeTablePaginator  # large tables: keys first, count estimated (core.paginators)
    show_full_result_count = False
    list_display = ("screening_number", "study_id", "status", "screening_verdict", "cohort", "site", "replaced")
    list_filter = ("status", "trial", "site", "replaced")
    search_fields = ("screening_number", "study_id")
    list_select_related = ("trial", "site", "screening")
    readonly_fields = (
        "study_id",
        "status",
        "withdrawn_on",
        "withdrawal_reason",
        "replaced",
        "replacement_reason",
        "timeline",
    )
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
            trial=obj.trial,
            site=obj.site,
            screening_number=obj.screening_number,
            date_of_birth=obj.date_of_birth,
            sex=obj.sex,
            initials=obj.initials,
            by=request.user,
        )
        obj.pk = created.pk

    @admin.action(description="Enroll into the trial's open cohort", permissions=["enroll"])
    def enroll_into_open_cohort(self, request, queryset):
        for participant in queryset.select_related("trial"):
            cohort = Cohort.objects.filter(trial=participant.trial, state__in=["open", "full", "paused"]).first()
            if cohort is None:
                self.message_user(
                    request, f"{participant}: {participant.trial.registry_id} has no open cohort.", messages.ERROR
                )
                continue
            try:
                enrollment = services.enroll_participant(participant=participant, cohort=cohort, by=request.user)
            except DomainError as refused:
                self.message_user(
                    request, f"Screening {participant.screening_number} not enrolled: {refused.message}", messages.ERROR
                )
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

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets.insert(2, ("Infusion and follow-up", {"fields": ["timeline"]}))
        return fieldsets

    @admin.display(description="Timeline")
    def timeline(self, obj):
        """Her enrollment, infusion, DLT window, visits, deviations and adverse events on one date axis."""
        if obj is None or not obj.pk:
            return "—"
        entries = [*selectors.participant_timeline(obj), *safety_reader().adverse_event_timeline(obj)]
        rows = [(TIMELINE_TONES[e.tone], e.label, e.when, e.window, e.status) for e in entries]
        rows.sort(key=lambda row: (row[2] or row[3])[:10])
        if obj.status == Participant.Status.ENROLLED and not obj.replaced:
            hold = selectors.infusion_hold(participant=obj)
            rows.append(
                (
                    TIMELINE_TONES["warn" if hold else "ok"],
                    "Infusion",
                    "",
                    "",
                    hold.message if hold else "Can be infused now.",
                )
            )
        if not rows:
            return "Not enrolled yet."
        body = format_html_join("", '<tr style="color:{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>', rows)
        return format_html("<table><tr><th>What</th><th>When</th><th>Window</th><th>Status</th></tr>{}</table>", body)
