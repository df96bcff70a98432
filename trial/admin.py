from django.contrib import admin, messages

from cohorts.services import cohort_open_first
from core.admin import AuditedAdmin, AuditedInline
from core.errors import DomainError
from trial.models import DoseLevel, EligibilityCriterion, Site, Trial, VisitDefinition


class DoseLevelInline(AuditedInline):
    model = DoseLevel
    fields = ("level", "label", "cells", "cells_shown")
    readonly_fields = ("cells_shown",)

    @admin.display(description="Cells")
    def cells_shown(self, obj):
        return obj.cells_display if obj.pk else "—"


class SiteInline(AuditedInline):
    model = Site
    fields = ("name", "city", "region", "country", "time_zone")


class CriterionInline(AuditedInline):
    model = EligibilityCriterion
    fields = ("order", "code", "kind", "text", "needs_judgment", "rule", "params")
    classes = ("collapse",)


class VisitInline(AuditedInline):
    model = VisitDefinition
    fields = ("code", "name", "day_offset", "window_before_days", "window_after_days")


@admin.register(Trial)
class TrialAdmin(AuditedAdmin):
    list_display = ("registry_id", "short_title", "phase", "status", "planned_enrollment", "escalation_design")
    list_filter = ("status", "phase", "escalation_design")
    search_fields = ("registry_id", "title", "short_title")
    inlines = (SiteInline, DoseLevelInline, VisitInline, CriterionInline)
    fieldsets = (
        (
            "Registration",
            {
                "fields": (
                    "registry_id",
                    "title",
                    "short_title",
                    "phase",
                    "design",
                    "product",
                    "sponsor",
                    "protocol_version",
                    "status",
                )
            },
        ),
        ("Population", {"fields": ("planned_enrollment", "eligible_sex", "min_age_years", "max_age_years")}),
        (
            "Escalation design",
            {
                "fields": (
                    "escalation_design",
                    "three_plus_three_variant",
                    "evaluability_rule",
                    "boin_target_rate",
                    "cohort_size",
                    "max_per_dose_level",
                    "review_quorum",
                )
            },
        ),
        ("Safety windows", {"fields": ("dlt_window_days", "sentinel_observation_days", "stagger_hours")}),
        ("Follow-up", {"fields": ("lost_to_follow_up_missed_visits",)}),
        (
            "DLT definition and stopping rules",
            {"fields": ("dlt_min_grade", "dlt_min_relationship", "dlt_stop_count", "stop_on_related_death")},
        ),
        (
            "Infusion",
            {
                "fields": (
                    "infusion_rate_min",
                    "infusion_rate_max",
                    "default_drop_factor",
                    "dose_tolerance_pct",
                    "max_infusions_per_participant",
                )
            },
        ),
    )

    actions = ("open_first_cohort",)

    @admin.action(description="Open the first cohort (lowest dose)", permissions=["open_first_cohort"])
    def open_first_cohort(self, request, queryset):
        for trial in queryset:
            try:
                cohort = cohort_open_first(trial=trial, by=request.user)
            except DomainError as refused:
                self.message_user(request, f"{trial.registry_id}: {refused.message}", messages.ERROR)
            else:
                self.message_user(request, f"{trial.registry_id}: {cohort} is open for enrollment.", messages.SUCCESS)

    def has_open_first_cohort_permission(self, request):
        return request.user.has_perm("cohorts.open_first_cohort")

    def get_readonly_fields(self, request, obj=None):
        # The registry ID identifies the trial everywhere (files, API, signatures): fixed once loaded.
        # The status moves only through the committee's decisions (stop, MTD): an edit cannot reopen it.
        return ("registry_id", "status") if obj else ()


@admin.register(DoseLevel)
class DoseLevelAdmin(AuditedAdmin):
    list_display = ("trial", "level", "label", "cells_display")
    list_filter = ("trial",)
    list_select_related = ("trial",)


@admin.register(EligibilityCriterion)
class EligibilityCriterionAdmin(AuditedAdmin):
    list_display = ("code", "kind", "short_text", "needs_judgment", "trial")
    list_filter = ("trial", "kind", "needs_judgment")
    search_fields = ("code", "text")
    list_select_related = ("trial",)

    @admin.display(description="Criterion")
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 100 else obj.text[:99] + "…"


@admin.register(VisitDefinition)
class VisitDefinitionAdmin(AuditedAdmin):
    list_display = ("code", "name", "day_offset", "window_before_days", "window_after_days", "trial")
    list_filter = ("trial",)
    list_select_related = ("trial",)


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ("name", "city", "country", "time_zone", "trial")
    list_select_related = ("trial",)
