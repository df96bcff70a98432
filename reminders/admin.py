"""Reminders in the admin: "My reminders" for everyone they are addressed to (with muting of non-safety kinds),
and the data manager's reminder log with filters and an audited "Send again". Nothing is added, edited or
deleted here: the services create and cancel reminders with the facts that cause them."""

import zoneinfo

from django import forms
from django.contrib import admin, messages

from core.admin import action_form_page
from core.errors import DomainError
from reminders import selectors, services
from reminders.kinds import kind_for
from reminders.models import MyReminder, Reminder, ReminderDelivery


def _local(moment, reminder) -> str:
    if moment is None:
        return "—"
    zone = zoneinfo.ZoneInfo(reminder.site.time_zone if reminder.site_id else "UTC")
    return services.format_moment(moment, zone)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MyReminder)
class MyReminderAdmin(ReadOnlyAdmin):
    list_display = ("due", "kind", "subject_label", "about", "state", "still_open", "safety")
    list_filter = ("kind", "state", "safety")
    search_fields = ("subject_label",)
    list_select_related = ("trial", "site", "recipient_user")
    actions = ("mute_kind",)
    fields = ("kind", "subject_label", "about", "due", "state", "sent", "safety", "recipient")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("reminders.view_reminder")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def get_queryset(self, request):
        return selectors.reminders_for_user(request.user, model=MyReminder)

    @admin.display(description="due", ordering="due_at")
    def due(self, obj):
        return _local(obj.due_at, obj)

    @admin.display(description="about")
    def about(self, obj):
        return _local(obj.event_at, obj)

    @admin.display(description="sent")
    def sent(self, obj):
        return _local(obj.sent_at, obj)

    @admin.display(description="recipient")
    def recipient(self, obj):
        return obj.recipient_display

    @admin.display(description="still needed", boolean=True)
    def still_open(self, obj):
        return obj.resolved_at is None

    @admin.action(description="Mute e-mail of these kinds for me (not for safety reminders)")
    def mute_kind(self, request, queryset):
        for kind in sorted(set(queryset.values_list("kind", flat=True))):
            try:
                services.reminder_mute(user=request.user, kind=kind, by=request.user)
            except DomainError as refused:
                self.message_user(request, refused.message, messages.ERROR)
            else:
                self.message_user(request, f"“{kind_for(kind).title}” is muted for you (e-mail).", messages.SUCCESS)


class SendAgainForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300, widget=forms.Textarea(attrs={"rows": 2}))


class DeliveryInline(admin.TabularInline):
    model = ReminderDelivery
    extra = 0
    can_delete = False
    fields = ("attempt", "at", "outcome", "recipients", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Reminder)
class ReminderLogAdmin(ReadOnlyAdmin):
    """The reminder log (data manager): every reminder, what happened to it, and "Send again"."""

    list_display = ("due_at", "kind", "subject_label", "recipient", "state", "attempts", "sent_at", "last_error")
    list_filter = ("state", "kind", "safety", "channel", "trial")
    search_fields = ("subject", "dedupe_key", "subject_label", "recipient_role", "recipient_user__username")
    list_select_related = ("trial", "recipient_user")
    date_hierarchy = "due_at"
    actions = ("send_again",)
    inlines = (DeliveryInline,)
    fieldsets = (
        ("What", {"fields": ("kind", "subject", "subject_label", "dedupe_key", "trial", "site", "safety")}),
        ("To whom", {"fields": ("recipient_user", "recipient_role", "channel")}),
        ("When (UTC)", {"fields": ("event_at", "due_at", "claimed_at", "sent_at", "resolved_at")}),
        ("Outcome", {"fields": ("state", "attempts", "last_error", "cancelled_at", "cancel_reason")}),
    )
    readonly_fields = [f for _, group in fieldsets for f in group["fields"]]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("reminders.view_reminder_log")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_send_again_permission(self, request):
        return request.user.has_perm("reminders.send_reminder_again")

    def get_queryset(self, request):
        return selectors.reminder_log()

    @admin.display(description="recipient")
    def recipient(self, obj):
        return obj.recipient_display

    @admin.action(description="Send again (asks for the reason)", permissions=["send_again"])
    def send_again(self, request, queryset):
        chosen = list(queryset)
        form = SendAgainForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            for reminder in chosen:
                reminder.label = f"{reminder} → {reminder.recipient_display} ({reminder.get_state_display()})"
            return action_form_page(
                self, request, title="Send reminders again", form=form, objects=chosen, action="send_again",
                submit="Send again", intro=f"{len(chosen)} reminder(s) will go out again at the next sweep.",
            )  # fmt: skip
        for reminder in chosen:
            try:
                copy = services.reminder_send_again(
                    reminder=reminder, reason=form.cleaned_data["reason"], by=request.user
                )
            except DomainError as refused:
                self.message_user(request, f"{reminder}: {refused.message}", messages.ERROR)
            else:
                self.message_user(request, f"{reminder}: sent again as reminder {copy.pk}.", messages.SUCCESS)
        return None
