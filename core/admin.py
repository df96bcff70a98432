"""Admin base classes: the audit trail (reason for change, no delete) and the refusal of a service shown on
the form that asked for it."""

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
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

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """An old version is shown, never restored ("Revert" is off: ``SIMPLE_HISTORY_REVERT_DISABLED``).

        simple-history only hides the button; a posted form would still save the old version past the
        services (a stopped trial back to recruiting), so the POST is refused here. A correction goes
        through the record's own page, that is through the service that owns the change.
        """
        if request.method != "GET":
            return HttpResponseForbidden("Reverting to an old version is off: correct the record on its own page.")
        return super().history_form_view(request, object_id, version_id, extra_context)

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


class RefusalClean:
    """Shows a service's refusal of the previous submission as the form's own error.

    ``show_refusal`` places it: each field message on its field (the first one), and the message on
    the form unless a field already says it. A form whose refusals read better another way overrides it.
    """

    domain_error: DomainError | None = None

    def clean(self):
        cleaned = super().clean()
        if self.domain_error is not None:
            self.show_refusal(self.domain_error)
        return cleaned

    def show_refusal(self, refused: DomainError) -> None:
        placed = False
        for name, messages_ in refused.fields.items():
            if name in self.fields and name not in self.errors:
                self.add_error(name, messages_[0] if messages_ else refused.message)
                placed = True
        if not placed or refused.message not in (m for ms in refused.fields.values() for m in ms):
            self.add_error(None, ValidationError(refused.message, code=refused.code))


class ServiceRefusalForm(RefusalClean, forms.ModelForm):
    pass


class ServiceRefusalMixin:
    """The admin's one refusal mechanism. Forms only validate their fields; ``save_model`` /
    ``save_related`` call the service. A ``DomainError`` it raises is caught here: the view's transaction
    is rolled back (nothing saved), and the submitted form is shown again with the refusal on it
    (``RefusalClean``). Actions report refusals with ``message_user`` instead."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refused:
            if request.method != "POST" or getattr(request, "_domain_error", None) is not None:
                raise
            request._domain_error = refused
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refused = getattr(request, "_domain_error", None)
        if not refused:
            return form
        bases = (form,) if issubclass(form, RefusalClean) else (RefusalClean, form)
        return type(form.__name__, bases, {"domain_error": refused})


def action_form_page(modeladmin, request, *, title, intro, objects, form, action, submit) -> TemplateResponse:
    """The page an admin action shows when it needs more input (a reason, a recipient, a time): the
    selected records, the form, and the same action posted again with ``apply``."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "title": title,
        "intro": intro,
        "objects": objects,
        "form": form,
        "action": action,
        "submit": submit,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/core/action_form.html", context)


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("worker", "last_seen_at", "beats")
    readonly_fields = ("worker", "last_seen_at", "beats")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Users and roles, audited like clinical records (21 CFR 11.10(d), (e)). A change of a user (name, staff or
# active flag, a role given or taken, the chair's permission) needs a reason and writes history rows with who
# and why, for the user and its many-to-many rows. Users are never deleted: one who leaves is deactivated
# (*Active* unticked, with the reason). Groups are audited the same way (``sync_roles`` owns their permissions).


class AuditedUserChangeForm(ReasonForChangeForm, UserChangeForm):
    pass


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    def save(self, commit=True):
        self.user._change_reason = "Password set in the admin"
        return super().save(commit)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    form = AuditedUserChangeForm
    change_password_form = AuditedPasswordChangeForm


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    fieldsets = ((None, {"fields": ("name", "permissions")}),)
