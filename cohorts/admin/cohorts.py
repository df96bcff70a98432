"""Cohorts and enrollments: read-only (cohorts open and move through services only)."""

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html_join

from cohorts.models import (
    Cohort,
    Enrollment,
)
from cohorts.ports import safety_reader
from cohorts.selectors import cohort_next_step
from core.admin import AuditedAdmin
from core.paginators import LargeTablePaginator


@admin.register(Cohort)
class CohortAdmin(AuditedAdmin):
    list_display = ("sequence", "trial", "dose", "state", "enrolled_of_capacity", "next_step")
    list_filter = ("trial", "state")
    list_select_related = ("trial", "dose_level")
    readonly_fields = (
        "trial",
        "dose_level",
        "sequence",
        "capacity",
        "state",
        "opened_at",
        "opened_by",
        "closed_at",
        "decision",
        "evaluability",
    )
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
        verdicts = safety_reader().participant_evaluability(obj.trial)  # the DLT data are safety's
        rows = [
            (e.participant.study_id or str(e.participant), verdicts[e.participant_id])
            for e in obj.enrollments.select_related("participant").order_by("slot")
        ]
        if not rows:
            return "Nobody enrolled yet."
        return format_html_join(
            "",
            '<div style="{}">{}: {} — {}</div>',
            (
                (
                    "color:#ba2121;font-weight:bold" if v.needs_replacement else "",
                    study_id,
                    "NEEDS REPLACEMENT" if v.needs_replacement else v.status.replace("_", " "),
                    v.reason,
                )
                for study_id, v in rows
            ),
        )


@admin.register(Enrollment)
class EnrollmentAdmin(AuditedAdmin):
    paginator = LargeTablePaginator  # large tables: keys first, count estimated (core.paginators)
    show_full_result_count = False
    list_display = ("participant", "cohort", "slot", "is_sentinel", "enrolled_at", "enrolled_by")
    list_filter = ("cohort__trial", "is_sentinel")
    list_select_related = ("participant", "cohort__dose_level", "enrolled_by")
    readonly_fields = (
        "trial",
        "participant",
        "cohort",
        "slot",
        "cohort_capacity",
        "is_sentinel",
        "enrolled_at",
        "enrolled_by",
    )

    def has_add_permission(self, request):
        return False  # enrollment is the action "Enroll into the trial's open cohort" on participants

    def has_change_permission(self, request, obj=None):
        return False


class CohortListFilter(admin.RelatedFieldListFilter):
    """The cohort filter with each cohort's dose in one query (its label names the dose)."""

    def field_choices(self, field, request, model_admin):
        return [(c.pk, str(c)) for c in Cohort.objects.select_related("dose_level").order_by("trial", "sequence")]
