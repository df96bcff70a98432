"""Expedited-reporting clocks: listed by due time, overdue in red; a report is recorded with an action."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import AuditedAdmin, action_form_page
from core.errors import DomainError
from core.paginators import LargeTablePaginator
from safety import services
from safety.models import ReportingClock

OVERDUE = '<span style="color:#ba2121;font-weight:bold">⚠ {}</span>'


def clock_overdue(clock: ReportingClock, now) -> bool:
    return clock.done_at is None and clock.due_at < now


def local_time(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


class ReportForm(forms.Form):
    reported_to = forms.CharField(
        label="Reported to", max_length=200, help_text="Who received the report (e.g. the sponsor's pharmacovigilance)."
    )
    done_at = forms.SplitDateTimeField(label="Reported at", help_text="Date and time (site time) the report was sent.")


class ClockStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("due", "Due, not yet overdue"), ("done", "Reported")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.filter(done_at__isnull=True, due_at__lt=now)
        if self.value() == "due":
            return queryset.filter(done_at__isnull=True, due_at__gte=now)
        if self.value() == "done":
            return queryset.filter(done_at__isnull=False)
        return queryset


@admin.register(ReportingClock)
class ReportingClockAdmin(AuditedAdmin):
    paginator = LargeTablePaginator  # large tables: keys first, count estimated (core.paginators)
    show_full_result_count = False
    list_display = (
        "due_at",
        "state",
        "kind",
        "event_label",
        "participant_label",
        "recipient",
        "done_at",
        "done_by",
        "reported_to",
    )
    list_filter = (ClockStateFilter, "kind")
    list_select_related = ("adverse_event__participant", "adverse_event__ctcae_term", "done_by")
    search_fields = ("adverse_event__verbatim_term", "adverse_event__participant__study_id", "reported_to")
    ordering = ("due_at",)
    actions = ("record_report",)
    fields = ("adverse_event", "kind", "started_at", "due_at", "recipient", "done_at", "done_by", "reported_to")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # a serious event starts its clocks (safety.services)

    def has_change_permission(self, request, obj=None):
        return False  # a report is recorded with the action "Record the report", never by editing

    def has_record_report_permission(self, request):
        return request.user.has_perm("safety.change_reportingclock")

    @admin.display(description="State")
    def state(self, obj):
        if obj.done_at:
            return "Reported"
        if clock_overdue(obj, timezone.now()):
            return format_html(OVERDUE, "OVERDUE")
        return "Due"

    @admin.display(description="Adverse event")
    def event_label(self, obj):
        event = obj.adverse_event
        url = reverse("admin:safety_adverseevent_change", args=[event.pk])
        return format_html('<a href="{}">{} (grade {})</a>', url, event.verbatim_term, event.grade)

    @admin.display(description="Participant", ordering="adverse_event__participant__study_id")
    def participant_label(self, obj):
        return obj.adverse_event.participant.study_id or str(obj.adverse_event.participant)

    @admin.action(description="Record the report (asks to whom and when)", permissions=["record_report"])
    def record_report(self, request, queryset):
        open_clocks = [c for c in queryset if c.done_at is None]
        if not open_clocks:
            self.message_user(request, "The selected reports are already recorded.", messages.WARNING)
            return None
        form = ReportForm(
            request.POST if "apply" in request.POST else None,
            initial={"done_at": timezone.localtime(timezone.now()).replace(second=0, microsecond=0)},
        )
        if not form.is_valid():
            for clock in open_clocks:
                clock.label = f"{clock.get_kind_display()} — {clock.adverse_event} — due by {local_time(clock.due_at)}"
            return action_form_page(
                self,
                request,
                title="Record an expedited report",
                form=form,
                objects=open_clocks,
                action="record_report",
                submit="Record the report",
                intro=f"Recorded as reported by {request.user.get_full_name() or request.user}.",
            )
        for clock in open_clocks:
            try:
                services.clock_complete(
                    clock=clock,
                    done_at=form.cleaned_data["done_at"],
                    reported_to=form.cleaned_data["reported_to"],
                    by=request.user,
                )
            except DomainError as refused:
                self.message_user(
                    request,
                    f"{clock.get_kind_display()} for {clock.adverse_event}: not recorded: {refused.message}",
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    f"{clock.get_kind_display()} for {clock.adverse_event}: reported to "
                    f"{form.cleaned_data['reported_to']}.",
                    messages.SUCCESS,
                )
        return None
