"""Two-factor admin login (django-otp TOTP) for the roles that decide or keep the trial's data.

Committee members, investigators, data managers and superusers need an authenticator app (RFC 6238 TOTP,
30-second codes) to use the admin (``OTP_REQUIRED_ROLES``; 21 CFR 11.300: controls for identification codes
and passwords). The admin's login form asks for the code; a user of those roles who has no device yet is
sent, after the password, to set one up: the secret and its QR code are shown on that page, and a new secret
replaces it at every showing until a code from the app confirms it. Signing stays password re-entry.

``OTP_REQUIRED_FOR_ADMIN`` is True in settings; the test suite turns it off for the tests that log in with
``force_login`` and on for the tests of this module.
"""

import base64
from io import BytesIO

import segno
from django.conf import settings
from django.db import transaction
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from core.errors import ErrorCode, InvalidInput
from core.history import audit

__all__ = ["qr_svg", "requires_two_factor", "totp_enrolment_confirm", "totp_enrolment_start", "totp_verify"]

DEVICE_NAME = "Authenticator app"


def requires_two_factor(user) -> bool:
    if not getattr(settings, "OTP_REQUIRED_FOR_ADMIN", True) or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=settings.OTP_REQUIRED_ROLES).exists()


def is_verified(user) -> bool:
    return bool(getattr(user, "is_verified", lambda: False)())


def needs_enrolment(user) -> bool:
    return not user_has_device(user, confirmed=True)


def totp_enrolment_start(*, user) -> tuple[TOTPDevice, str]:
    """A fresh secret on the user's one unconfirmed device; returns it with the secret in base32 (for typing)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
        if device is None:
            device = TOTPDevice(user=user, name=DEVICE_NAME, confirmed=False)
        device.key = random_hex(20)  # the secret shown before, if any, is worthless from now on
        audit(device, by=user, reason="Two-factor enrolment started").save()
    return device, base64.b32encode(device.bin_key).decode()


def totp_enrolment_confirm(*, request, token: str) -> TOTPDevice:
    """A code from the app confirms the device; the session is verified from now on."""
    user = request.user
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
        if device is None or not device.verify_token(_clean(token)):
            raise InvalidInput(
                ErrorCode.OTP_INVALID,
                "The code is not correct. Type the 6 digits your app shows now.",
                {"otp_token": ["Incorrect."]},
            )
        device.confirmed = True
        audit(device, by=user, reason="Two-factor device confirmed").save()
    otp_login(request, device)
    return device


def totp_verify(*, request, token: str) -> TOTPDevice:
    """A session that logged in with the password only (the dashboard's login) adds the code for the admin."""
    device = match_token(request.user, _clean(token))
    if device is None:
        raise InvalidInput(ErrorCode.OTP_INVALID, "The code is not correct.", {"otp_token": ["Incorrect."]})
    otp_login(request, device)
    return device


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG QR code (no script, no external image)."""
    buffer = BytesIO()
    segno.make(device.config_url, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


def _clean(token) -> str:
    return "".join(str(token or "").split())[:16]
