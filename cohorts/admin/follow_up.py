"""Follow-up visits (done or missed) and protocol deviations (recorded, assessed, closed)."""

from django import forms
from django.contrib import admin, messages

from cohorts import services
from cohorts.admin.cohorts import CohortListFilter
from cohorts.admin.data_lock import DataLockAdminMixin
from cohorts.models import (
    FollowUpVisit,
    ProtocolDeviation,
)
from core.admin import AuditedAdmin, ReasonForChangeForm, ServiceRefusalForm, ServiceRefusalMixin
from core.paginators import LargeTablePaginator


class VisitOutcomeForm(ServiceRefusalForm):
    outcome = forms.ChoiceField(choices=(("completed", "Done"), ("missed", "Missed")), widget=forms.RadioSelect)
    visit_date = forms.DateField(
        label="Done on", required=False, widget=admin.widgets.AdminDateWidget, help_text="The site's date."
    )
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
class FollowUpVisitAdmin(DataLockAdminMixin, ServiceRefusalMixin, AuditedAdmin):
    paginator = LargeTablePaginator  # large tables: keys first, count estimated (core.paginators)
    show_full_result_count = False
    form = VisitOutcomeForm
    list_display = ("participant", "name", "target_date", "window", "status", "done_on", "late")
    list_filter = ("status", "code", ("infusion__cohort", CohortListFilter))
    search_fields = ("participant__study_id",)
    list_select_related = ("participant", "infusion__cohort")
    date_hierarchy = "target_date"
    RECORD_FIELDS = (
        "participant",
        "name",
        "day_offset",
        "target_date",
        "window_start",
        "window_end",
        "status",
        "done_on",
        "missed_reason",
        "missed_automatically",
        "recorded_by",
        "recorded_at",
    )
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
            obj is None or obj.status == FollowUpVisit.Status.SCHEDULED or obj.missed_automatically
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
            visit = services.visit_complete(
                visit=obj, on=data["visit_date"], by=request.user, reason=data.get("change_reason", "")
            )
            if visit.out_of_window:
                self.message_user(
                    request,
                    f"{visit.name} was done outside its window ({visit.window_start} to "
                    f"{visit.window_end}): a minor deviation was opened.",
                    messages.WARNING,
                )
        else:
            services.visit_miss(visit=obj, reason=data["why_missed"], by=request.user)
            self.message_user(request, f"{obj.name} is missed: a minor deviation records it.", messages.WARNING)

    def save_related(self, request, form, formsets, change):
        pass  # no inlines; the service wrote everything


class DeviationForm(ServiceRefusalForm, ReasonForChangeForm):
    close = forms.BooleanField(
        label="Close this deviation",
        required=False,
        help_text="Needs the corrective action. A closed deviation is final.",
    )

    class Meta:
        model = ProtocolDeviation
        fields = (
            "participant",
            "category",
            "severity",
            "description",
            "occurred_on",
            "corrective_action",
            "infusion",
            "visit",
        )


@admin.register(ProtocolDeviation)
class ProtocolDeviationAdmin(DataLockAdminMixin, ServiceRefusalMixin, AuditedAdmin):
    form = DeviationForm
    list_display = ("detected_at", "participant", "category", "severity", "source", "status", "occurred_on", "summary")
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
        return (
            "participant",
            "category",
            "occurred_on",
            "infusion",
            "visit",
            "source",
            "detected_by",
            "detected_at",
            "drip_rate_reading",
            "status",
            "closed_at",
            "closed_by",
        )

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
                participant=data["participant"],
                category=data["category"],
                severity=data["severity"],
                description=data["description"],
                occurred_on=data["occurred_on"],
                by=request.user,
                corrective_action=data.get("corrective_action") or "",
                infusion=data.get("infusion"),
                visit=data.get("visit"),
            )
            obj.pk = deviation.pk
            return
        services.deviation_update(
            deviation=obj,
            by=request.user,
            reason=data.get("change_reason", ""),
            severity=data.get("severity"),
            description=data.get("description"),
            corrective_action=data.get("corrective_action"),
            close=bool(data.get("close")),
        )

    def save_related(self, request, form, formsets, change):
        pass
