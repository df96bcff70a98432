"""Admin base classes: the audit trail (reason for change, no delete) and the refusal of a service shown on
the form that asked for it."""

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, UserChangeForm
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden
from django.template.response import TemplateResponse
from django_otp.plugins.otp_totp.models import TOTPDevice
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
from core.free_text import free_text_fields, free_text_mark_reviewed
from core.history import audit
from core.lockouts import lockout_release
from core.models import FreeTextReview, Heartbeat, LockoutRelease
from trial.access import scope_records


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


FREE_TEXT_REVIEWED = "Free text read in the admin: no participant or staff identifiers; released to sponsors"


def release_free_text(modeladmin, request, queryset):
    """Release the selected records' free text, as it reads now, to sponsors (``core.free_text``)."""
    done = 0
    for record in queryset:
        try:
            free_text_mark_reviewed(record=record, by=request.user, reason=FREE_TEXT_REVIEWED)
        except DomainError as refused:
            modeladmin.message_user(request, f"{record}: {refused.message}", messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, f"Free text of {done} record(s) released to sponsors.", messages.SUCCESS)


release_free_text.short_description = "Release the free text to sponsors (reviewed: no identifiers)"


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

    def get_actions(self, request):
        """Records with free text (``free_text_fields``) offer the data manager its release to sponsors."""
        actions = super().get_actions(request)
        if free_text_fields(self.model) and request.user.has_perm("core.review_free_text"):
            actions["release_free_text"] = (
                release_free_text, "release_free_text", release_free_text.short_description
            )  # fmt: skip
        return actions

    # Site scoping (trial.access): the changelist, the change page, the actions and every foreign-key choice
    # show only the participants of the user's sites (sponsors: their trials; committee, data managers: all).
    def get_queryset(self, request):
        return scope_records(super().get_queryset(request), request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Every choice of a record (a participant, a site, an infusion…) narrowed to the user's scope, also
        where a form builds its own list (the infusion and Gilbert's syndrome forms)."""
        form = super().get_form(request, obj, change=change, **kwargs)
        user = request.user

        class ScopedForm(form):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                for field in self.fields.values():
                    if getattr(field, "queryset", None) is not None:
                        field.queryset = scope_records(field.queryset, user)

        ScopedForm.__name__ = form.__name__
        return ScopedForm

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


class LockoutReleaseForm(RefusalClean, forms.ModelForm):
    class Meta:
        model = LockoutRelease
        fields = ["kind", "username", "reason"]
        widgets = {"reason": forms.TextInput(attrs={"size": 80})}


@admin.register(LockoutRelease)
class LockoutReleaseAdmin(ServiceRefusalMixin, admin.ModelAdmin):
    """Unlock a login or signing lockout (data managers): each release is a row of its own, never changed."""

    form = LockoutReleaseForm
    list_display = ("released_at", "kind", "username", "released_by", "reason")
    list_filter = ("kind",)
    list_select_related = ("released_by",)
    search_fields = ("username",)

    def get_readonly_fields(self, request, obj=None):
        return ("kind", "username", "user", "released_by", "released_at", "reason") if obj else ()

    def has_add_permission(self, request):
        return request.user.has_perm("core.release_lockout")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        released = lockout_release(
            kind=form.cleaned_data["kind"],
            username=form.cleaned_data["username"],
            by=request.user,
            reason=form.cleaned_data["reason"],
        )
        obj.pk, obj.released_at = released.pk, released.released_at


@admin.register(FreeTextReview)
class FreeTextReviewAdmin(admin.ModelAdmin):
    """Each release of a record's free text to sponsors: which record, who, when, why. Never changed; made by the
    action "Release the free text to sponsors" on the record's own list (or the API)."""

    list_display = ("reviewed_at", "content_type", "object_id", "reviewed_by", "reason")
    list_filter = ("content_type",)
    list_select_related = ("content_type", "reviewed_by")
    fields = ("content_type", "object_id", "text_digest", "reviewed_by", "reviewed_at", "reason")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)  # django-otp's own admin shows a device's secret as a QR code and edits it


@admin.register(TOTPDevice)
class AuthenticatorDeviceAdmin(admin.ModelAdmin):
    """Authenticator apps (two-factor): who has one and when it was last used, never the secret. A lost phone:
    a superuser deletes the device and its user enrols again at the next login (no role may delete)."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    list_select_related = ("user",)
    search_fields = ("user__username",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class UnlockForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 80}), help_text="Required.")


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class LoginAttemptAdmin(AxesAccessAttemptAdmin):
    """django-axes' failed logins, with *Unlock* (a recorded release) instead of a silent delete."""

    actions = ["unlock"]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_release_permission(self, request):
        return request.user.has_perm("core.release_lockout")

    @admin.action(description="Unlock these logins (with a reason)", permissions=["release"])
    def unlock(self, request, queryset):
        form = UnlockForm(request.POST if "apply" in request.POST else None)
        attempts = list(queryset)
        if not form.is_valid():
            for attempt in attempts:
                attempt.label = f"{attempt.username} from {attempt.ip_address}: {attempt.failures_since_start} failures"
            return action_form_page(
                self,
                request,
                title="Unlock logins",
                intro="Each username's failed logins are reset (from every address); the release is recorded.",
                objects=attempts,
                form=form,
                action="unlock",
                submit="Unlock",
            )
        for username in sorted({attempt.username for attempt in attempts if attempt.username}):
            try:
                lockout_release(kind=LockoutRelease.Kind.LOGIN, username=username, by=request.user,
                                reason=form.cleaned_data["reason"])  # fmt: skip
            except DomainError as refused:
                self.message_user(request, f"{username}: not unlocked: {refused.message}", messages.ERROR)
            else:
                self.message_user(request, f"{username} can log in again.", messages.SUCCESS)
        return None
