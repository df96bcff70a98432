"""API tokens in the admin: listed with their user, creation and expiry; issued (shown once) and revoked through
``core.tokens``, by data managers and superusers. No token is ever shown again, edited or deleted outright."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.template.response import TemplateResponse
from knox.models import AuthToken

from core.admin import action_form_page
from core.errors import DomainError
from core.models import ApiToken
from core.tokens import token_is_expired, token_issue, token_revoke


class IssueTokenForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_active=True).order_by("username"))
    reason = forms.CharField(max_length=500, required=False, help_text="Kept in the audit trail, e.g. the system.")


class RevokeTokenForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 80}), help_text="Required.")


if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)  # knox's own admin would show add/delete without the audit


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("token_key", "user", "created", "expiry", "status")
    list_select_related = ("user",)
    list_filter = ("expiry",)
    search_fields = ("user__username", "token_key")
    ordering = ("-created",)
    fields = ("token_key", "user", "created", "expiry")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description="status")
    def status(self, obj) -> str:
        return "expired" if token_is_expired(obj) else "active"

    def has_add_permission(self, request):
        return request.user.has_perm("core.issue_apitoken")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        return request.user.has_perm("core.revoke_apitoken")

    def add_view(self, request, form_url="", extra_context=None):
        """Issue a token: the token is in this one response and nowhere else (not in a message, not stored)."""
        if not self.has_add_permission(request):
            raise DjangoPermissionDenied
        form = IssueTokenForm(request.POST or None)
        issued = None
        if request.method == "POST" and form.is_valid():
            user = form.cleaned_data["user"]
            try:
                token, secret = token_issue(user=user, by=request.user, reason=form.cleaned_data["reason"])
            except DomainError as refused:
                form.add_error(None, refused.message)
            else:
                issued = {"user": user, "token": secret, "expiry": token.expiry}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "API token issued" if issued else "Issue an API token",
            "form": form,
            "issued": issued,
            "lifetimes": self._lifetimes(),
        }
        response = TemplateResponse(request, "admin/core/token_issue.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _lifetimes() -> str:
        return (
            f"A sponsor's token expires after {settings.API_TOKEN_TTL_SPONSOR_DAYS} days, "
            f"any other account's after {settings.API_TOKEN_TTL_STAFF_DAYS} days."
        )

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        form = RevokeTokenForm(request.POST if "apply" in request.POST else None)
        tokens = list(queryset)
        if not form.is_valid():
            for token in tokens:
                token.label = f"{token.token_key}… of {token.user} (expires {token.expiry:%Y-%m-%d})"
            return action_form_page(
                self,
                request,
                title="Revoke API tokens",
                intro="A revoked token stops working at once. This cannot be undone: issue a new one if needed.",
                objects=tokens,
                form=form,
                action="revoke",
                submit="Revoke",
            )
        for token in tokens:
            try:
                token_revoke(token=token, by=request.user, reason=form.cleaned_data["reason"])
            except DomainError as refused:
                self.message_user(request, f"{token}: not revoked: {refused.message}", messages.ERROR)
            else:
                self.message_user(request, f"Token {token.token_key}… of {token.user} revoked.", messages.SUCCESS)
        return None
