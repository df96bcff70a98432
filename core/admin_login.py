"""The admin's login with its second factor: the login form, the enrolment and code pages, and the middleware
that keeps a password-only session of a role that needs the code out of the admin (``core.two_factor``)."""

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django_otp import match_token, user_has_device

from core.errors import DomainError, ErrorCode
from core.two_factor import (
    is_verified,
    needs_enrolment,
    qr_svg,
    requires_two_factor,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_verify,
)


def _code_field(required: bool) -> forms.CharField:
    return forms.CharField(
        label="Authentication code",
        required=required,
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6 digits your authenticator app shows now (committee members, investigators, data "
        "managers and administrators).",
    )


class AdminLoginForm(AdminAuthenticationForm):
    """Username, password and, for a user with an authenticator app, its current code, in one step."""

    otp_token = _code_field(required=False)

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and requires_two_factor(user) and user_has_device(user, confirmed=True):
            device = match_token(user, "".join((cleaned.get("otp_token") or "").split()))
            if device is None:
                raise forms.ValidationError(
                    "Enter the current code of your authenticator app (it changes every 30 seconds).",
                    code=ErrorCode.OTP_INVALID,
                )
            user.otp_device = device  # django-otp marks the session verified when the login completes
        return cleaned


class CodeForm(forms.Form):
    otp_token = _code_field(required=True)


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not target or not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return reverse("admin:index")
    return target


def _page(request, template: str, **context) -> TemplateResponse:
    context = {**admin.site.each_context(request), "next": _next(request), **context}
    response = TemplateResponse(request, template, context)
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@login_required(login_url="admin:login")
def two_factor_setup(request):
    """Enrolment: the secret and its QR code, then a code from the app to confirm it."""
    if not requires_two_factor(request.user) or not needs_enrolment(request.user):
        return redirect(_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            totp_enrolment_confirm(request=request, token=form.cleaned_data["otp_token"])
        except DomainError as refused:
            form.add_error("otp_token", refused.message)
        else:
            return redirect(_next(request))
    device, secret = totp_enrolment_start(user=request.user)
    return _page(
        request,
        "core/two_factor_setup.html",
        title="Set up your authenticator app",
        form=CodeForm() if form.is_bound and not form.errors else form,
        secret=secret,
        qr=qr_svg(device),
    )


@never_cache
@login_required(login_url="admin:login")
def two_factor_verify(request):
    """A session that logged in with the password only (the dashboard's login) adds the code for the admin."""
    if not requires_two_factor(request.user) or is_verified(request.user):
        return redirect(_next(request))
    if needs_enrolment(request.user):
        return redirect(f"{reverse('two-factor-setup')}?next={_next(request)}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            totp_verify(request=request, token=form.cleaned_data["otp_token"])
        except DomainError as refused:
            form.add_error("otp_token", refused.message)
        else:
            return redirect(_next(request))
    return _page(request, "core/two_factor_verify.html", title="Authentication code", form=form)


class AdminTwoFactorMiddleware:
    """Every admin page but the login, logout and these two pages needs a verified session for those roles."""

    EXEMPT = ("/admin/login/", "/admin/logout/", "/admin/2fa/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if (
            path.startswith("/admin/")
            and not path.startswith(self.EXEMPT)
            and request.user.is_authenticated
            and requires_two_factor(request.user)
            and not is_verified(request.user)
        ):
            page = "two-factor-setup" if needs_enrolment(request.user) else "two-factor-verify"
            return redirect(f"{reverse(page)}?next={request.get_full_path()}")
        return self.get_response(request)
