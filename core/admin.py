from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from core.history import audit
from core.models import Heartbeat


class ReasonForChangeForm(forms.ModelForm):
    """Edits of clinical data carry a reason for change (21 CFR Part 11 audit trail)."""

    change_reason = forms.CharField(
        label="Reason for change",
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Required when you change an existing record; kept in its history.",
    )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and not (cleaned.get("change_reason") or "").strip():
            self.add_error("change_reason", "Give the reason for this change; it is kept in the audit trail.")
        return cleaned


class AuditedAdmin(SimpleHistoryAdmin):
    """Admin for audited models: history button, reason for change on edit, no deletion."""

    form = ReasonForChangeForm
    reason_section = ("Reason for change", {"fields": ["change_reason"]})

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and self.has_change_permission(request, obj):
            fieldsets.append(self.reason_section)
        return fieldsets

    def has_delete_permission(self, request, obj=None):
        return False

    def _reason(self, form, change: bool) -> str:
        if change:
            return form.cleaned_data.get("change_reason", "").strip()
        return "Created in the admin"

    def save_model(self, request, obj, form, change):
        audit(obj, by=request.user, reason=self._reason(form, change))
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        request._audit_reason = self._reason(form, change)
        super().save_related(request, form, formsets, change)

    def save_formset(self, request, form, formset, change):
        reason = getattr(request, "_audit_reason", "") or "Changed in the admin"
        for instance in formset.save(commit=False):
            audit(instance, by=request.user, reason=reason).save()
        formset.save_m2m()


class AuditedInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("worker", "last_seen_at", "beats")
    readonly_fields = ("worker", "last_seen_at", "beats")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
