"""Lost-to-follow-up flags: opened by the follow-up sweep; an investigator confirms or dismisses each."""

from django import forms
from django.contrib import admin, messages

from cohorts import services
from cohorts.models import LostToFollowUp
from core.admin import AuditedAdmin, action_form_page
from core.errors import DomainError


class LostToFollowUpDecisionForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        help_text="What was tried to reach her (confirm), or why she is still followed (dismiss). Kept with "
        "the decision.",
    )


@admin.register(LostToFollowUp)
class LostToFollowUpAdmin(AuditedAdmin):
    list_display = ("participant", "participant_status", "missed_visits", "last_missed", "flagged_at", "state")
    list_filter = ("state", "participant__trial", "participant__site")
    search_fields = ("participant__study_id",)
    list_select_related = ("participant", "last_missed_visit")
    readonly_fields = (
        "participant",
        "missed_visits",
        "last_missed_visit",
        "flagged_at",
        "state",
        "decided_by",
        "decided_at",
        "decision_note",
    )
    actions = ["confirm_lost", "dismiss_flag"]

    def has_add_permission(self, request):
        return False  # the follow-up sweep opens flags

    def has_change_permission(self, request, obj=None):
        return False  # decided by the actions below, through the service

    def has_decide_permission(self, request):
        return request.user.has_perm("cohorts.decide_losttofollowup")

    @admin.display(description="Status")
    def participant_status(self, obj):
        return obj.participant.get_status_display()

    @admin.display(description="Last missed visit")
    def last_missed(self, obj):
        return f"{obj.last_missed_visit.code} (window closed {obj.last_missed_visit.window_end})"

    @admin.action(description="Confirm lost to follow-up (investigator; asks for a note)", permissions=["decide"])
    def confirm_lost(self, request, queryset):
        return self._decide(request, queryset, confirm=True)

    @admin.action(
        description="Dismiss: she is still in follow-up (investigator; asks for a note)", permissions=["decide"]
    )
    def dismiss_flag(self, request, queryset):
        return self._decide(request, queryset, confirm=False)

    def _decide(self, request, queryset, *, confirm: bool):
        flags = [f for f in queryset.select_related("participant") if f.state == LostToFollowUp.State.PENDING]
        if not flags:
            self.message_user(request, "None of the selected flags is pending: nothing to decide.", messages.WARNING)
            return None
        action, verb = ("confirm_lost", "Confirm lost to follow-up") if confirm else ("dismiss_flag", "Dismiss")
        form = LostToFollowUpDecisionForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            for flag in flags:
                flag.label = str(flag)
            return action_form_page(
                self,
                request,
                title=verb,
                form=form,
                objects=flags,
                action=action,
                submit=verb,
                intro=f"{verb}: {len(flags)} flag(s), as investigator {request.user.get_full_name() or request.user}.",
            )
        decide = services.lost_to_follow_up_confirm if confirm else services.lost_to_follow_up_dismiss
        for flag in flags:
            try:
                decided = decide(flag=flag, note=form.cleaned_data["note"], by=request.user)
            except DomainError as refused:
                self.message_user(request, f"{flag.participant}: not decided: {refused.message}", messages.ERROR)
            else:
                self.message_user(request, f"{decided.participant}: {decided.get_state_display()}.", messages.SUCCESS)
        return None
