from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from cohorts.services import cohort_open_first
from core.admin import AuditedAdmin, AuditedInline
from core.errors import DomainError
from safety import selectors as safety_selectors
from trial.access import site_assignment_save, trial_assignment_save
from trial.models import DoseLevel, EligibilityCriterion, Site, SiteAssignment, Trial, TrialAssignment, VisitDefinition


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
        (
            "Decision tables of this protocol version",
            {"fields": ("decision_tables",), "classes": ("collapse",)},
        ),
        ("Safety windows", {"fields": ("dlt_window_days", "sentinel_observation_days", "stagger_hours")}),
        ("Follow-up", {"fields": ("lost_to_follow_up_missed_visits",)}),
        (
            "DLT definition and stopping rules",
            {"fields": ("dlt_min_grade", "dlt_min_relationship", "dlt_stop_count", "stop_on_related_death")},
        ),
        (
            "Reminder lead times",
            {
                "fields": (
                    "visit_reminder_days",
                    "review_target_days",
                    "review_reminder_days",
                    "report_reminder_days",
                    "sae_follow_up_days",
                )
            },
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

    class Media:
        css = {"all": ("safety/dosefinding.css",)}

    @admin.display(description="Decision tables")
    def decision_tables(self, obj):
        if obj is None or not obj.pk:
            return "Shown once the trial is saved."
        return format_html(
            '<p class="df-print-link"><a href="{}">Printable page</a> (also: <code>manage.py decision_table</code>). '
            "A review freezes these tables with the protocol version into its snapshot.</p>{}",
            reverse("admin:trial_trial_decision_table", args=[obj.pk]),
            render_to_string(
                "safety/dosefinding/_decision_tables.html", {"df": safety_selectors.protocol_tables_display(obj)}
            ),
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.decision_table_view)
        return [path("<int:pk>/decision-table/", view, name="trial_trial_decision_table"), *super().get_urls()]

    def decision_table_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        trial = get_object_or_404(Trial, pk=pk)
        return render(request, "safety/dosefinding/print.html", {
            "heading": f"{trial.registry_id}: decision tables", "trial": trial,
            "subtitle": f"design {trial.get_escalation_design_display()} (the protocol's), 3+3 variant "
                        f"{trial.three_plus_three_variant}, BOIN target {trial.boin_target_rate}",
            "df": safety_selectors.protocol_tables_display(trial),
            "back_url": reverse("admin:trial_trial_change", args=[trial.pk]),
        })  # fmt: skip

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
        return ("registry_id", "status", "decision_tables") if obj else ("decision_tables",)


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


class _AssignmentAdmin(AuditedAdmin):
    """Who works at which site / which sponsor reads which trial. Saved through the service (audited);
    never deleted: untick *active* to end an assignment, with the reason."""

    list_filter = ("active",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    service = None  # the service that saves one (trial.access)
    target = ""  # "site" or "trial"

    def get_readonly_fields(self, request, obj=None):
        return ("user", self.target) if obj else ()

    def save_model(self, request, obj, form, change):
        reason = self._reason(form, change) if change else "Assigned in the admin"
        saved = type(self).service(
            user=obj.user, **{self.target: getattr(obj, self.target)}, active=obj.active, by=request.user, reason=reason
        )
        obj.pk = saved.pk


@admin.register(SiteAssignment)
class SiteAssignmentAdmin(_AssignmentAdmin):
    list_display = ("user", "site", "active")
    list_select_related = ("user", "site__trial")
    fields = ("user", "site", "active")
    service = staticmethod(site_assignment_save)
    target = "site"


@admin.register(TrialAssignment)
class TrialAssignmentAdmin(_AssignmentAdmin):
    list_display = ("user", "trial", "active")
    list_select_related = ("user", "trial")
    fields = ("user", "trial", "active")
    service = staticmethod(trial_assignment_save)
    target = "trial"
