"""Two-factor admin login (TOTP) for committee members, investigators, data managers and superusers."""

import base64
import re

import pytest
import time_machine
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from config import settings as project_settings
from core.roles import DATA_MANAGER, INVESTIGATOR, SAFETY_COMMITTEE, SITE_STAFF
from tests.core.test_csp import inline_scripts
from tests.factories import UserFactory, token_for

pytestmark = [pytest.mark.django_db, pytest.mark.two_factor]
PASSWORD = "correct horse battery staple"


def code(key: bytes) -> str:
    return f"{totp(key):06d}"


def _login(client, username, otp="", path="/admin/login/"):
    return client.post(path, {"username": username, "password": PASSWORD, "otp_token": otp, "next": "/admin/"})


def _enrol(client, traveller) -> bytes:
    page = client.get("/admin/2fa/setup/?next=/admin/")
    assert page.status_code == 200
    secret = re.search(r'id="totp-secret">([A-Z2-7=]+)<', page.content.decode()).group(1)
    key = base64.b32decode(secret)
    assert client.post("/admin/2fa/setup/", {"otp_token": code(key), "next": "/admin/"}).status_code == 302
    traveller.shift(31)  # a code is accepted once: the next login uses the next one
    return key


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_the_requirement_is_on_in_the_settings_themselves():
    assert project_settings.OTP_REQUIRED_FOR_ADMIN is True
    assert set(project_settings.OTP_REQUIRED_ROLES) == {SAFETY_COMMITTEE, INVESTIGATOR, DATA_MANAGER}


@pytest.mark.parametrize(
    ("role", "superuser", "needs_code"),
    [
        (SAFETY_COMMITTEE, False, True),
        (INVESTIGATOR, False, True),
        (DATA_MANAGER, False, True),
        (None, True, True),
        (SITE_STAFF, False, False),
    ],
)
def test_after_the_password_only_the_roles_that_need_a_code_are_sent_to_set_one_up(client, role, superuser, needs_code):
    UserFactory(username="u", role=role, is_superuser=superuser)
    assert _login(client, "u").status_code == 302
    response = client.get("/admin/")
    if needs_code:
        assert response.status_code == 302 and response["Location"].startswith("/admin/2fa/setup/")
        assert client.get("/admin/cohorts/participant/").status_code == 302
    else:
        assert response.status_code == 200


def test_enrolment_shows_a_qr_code_and_a_key_and_a_code_from_it_opens_the_admin(client, clock):
    member = UserFactory(username="src1", role=SAFETY_COMMITTEE)
    _login(client, "src1")
    page = client.get("/admin/2fa/setup/")
    assert b"<svg" in page.content and b"totp-secret" in page.content
    assert inline_scripts(page.content.decode()) == []
    _enrol(client, clock)
    assert TOTPDevice.objects.get(user=member).confirmed
    assert client.get("/admin/").status_code == 200


def test_a_wrong_code_does_not_confirm_the_device(client):
    member = UserFactory(username="src1", role=SAFETY_COMMITTEE)
    _login(client, "src1")
    client.get("/admin/2fa/setup/")
    response = client.post("/admin/2fa/setup/", {"otp_token": "000000"})
    assert response.status_code == 200 and b"The code is not correct" in response.content
    assert not TOTPDevice.objects.filter(user=member, confirmed=True).exists()
    assert client.get("/admin/").status_code == 302


def test_a_reloaded_setup_page_makes_the_key_shown_before_worthless(client):
    UserFactory(username="src1", role=SAFETY_COMMITTEE)
    _login(client, "src1")
    first = re.search(r'id="totp-secret">([A-Z2-7=]+)<', client.get("/admin/2fa/setup/").content.decode()).group(1)
    second = re.search(r'id="totp-secret">([A-Z2-7=]+)<', client.get("/admin/2fa/setup/").content.decode()).group(1)
    assert first != second
    response = client.post("/admin/2fa/setup/", {"otp_token": code(base64.b32decode(first))})
    assert response.status_code == 200 and b"The code is not correct" in response.content


@pytest.mark.parametrize(("otp", "logged_in"), [("", False), ("000000", False), ("right", True)])
def test_once_enrolled_the_login_form_asks_for_the_code(client, clock, otp, logged_in):
    UserFactory(username="inv1", role=INVESTIGATOR)
    _login(client, "inv1")
    key = _enrol(client, clock)
    client.logout()
    response = _login(client, "inv1", otp=code(key) if otp == "right" else otp)
    assert ("_auth_user_id" in client.session) is logged_in
    if logged_in:
        assert client.get("/admin/").status_code == 200
    else:
        assert response.status_code == 200 and b"authenticator app" in response.content


def test_the_login_page_has_the_code_field(client):
    page = client.get("/admin/login/")
    assert b'name="otp_token"' in page.content and b'autocomplete="one-time-code"' in page.content


def test_a_password_only_dashboard_session_needs_the_code_for_the_admin(client, clock):
    UserFactory(username="dm", role=DATA_MANAGER)
    _login(client, "dm")
    key = _enrol(client, clock)
    client.logout()
    assert _login(client, "dm", path="/accounts/login/").status_code == 302  # the dashboard: password only
    assert client.get("/dashboard/").status_code == 200
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/2fa/verify/")
    assert client.post("/admin/2fa/verify/", {"otp_token": "000000"}).status_code == 200
    clock.shift(2)  # django-otp refuses any code for 1 s after a wrong one (then 2, 4, … s)
    assert client.post("/admin/2fa/verify/", {"otp_token": code(key), "next": "/admin/"}).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_an_unverified_session_may_read_the_api_but_not_write_while_a_token_may(client, nct_trial):
    investigator = UserFactory(username="inv1", role=INVESTIGATOR)
    api = APIClient()
    api.force_login(investigator)
    assert api.get("/api/v1/trials/").status_code == 200
    refused = api.post("/api/v1/trials/NCT06949137/open-first-cohort/", {}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "two_factor_required"
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {token_for(investigator)}")
    assert with_token.post("/api/v1/trials/NCT06949137/open-first-cohort/", {}, format="json").status_code == 201


def test_the_device_list_never_shows_a_secret_and_nobody_adds_or_edits_a_device_there(client, clock, settings):
    member = UserFactory(username="src1", role=SAFETY_COMMITTEE)
    _login(client, "src1")
    key = _enrol(client, clock)
    device = TOTPDevice.objects.get(user=member)
    settings.OTP_REQUIRED_FOR_ADMIN = False  # the superuser below opens the admin with force_login
    client.force_login(UserFactory(username="root", is_superuser=True))
    listing = client.get("/admin/otp_totp/totpdevice/")
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    assert listing.status_code == 200 and b"src1" in listing.content
    assert page.status_code == 200
    for shown in (listing.content, page.content):
        assert device.key.encode() not in shown and base64.b32encode(key).rstrip(b"=") not in shown
        assert b"qrcode" not in shown.lower()
