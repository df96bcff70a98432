"""Gilbert's syndrome (issue 9, item 8): an investigator's documented diagnosis waives E14's bilirubin limit.

Registry record, exclusion 14: "Known severe hepatic insufficiency (AST or ALT ≥2×ULN, ALP or total
bilirubin ≥1.5×ULN) … (excluding Gilbert's syndrome …)". The diagnosis waives the bilirubin limit only;
AST, ALT and ALP breaches still exclude. Only an investigator records it, with who and when.
"""

import datetime as dt
import html
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from cohorts import services
from cohorts.models import GilbertSyndromeDiagnosis, Participant, ScreeningRecord
from core.errors import DomainError
from core.roles import INVESTIGATOR, ROLES, SPONSOR
from tests.factories import UserFactory, eligible_participant, staff_users, token_for

pytestmark = pytest.mark.django_db

SH = dt.timezone(dt.timedelta(hours=8))
# 2026-11-20 00:30 in Nanjing is still 2026-11-19 in UTC: the date shown is the site's.
RECORDED_AT = dt.datetime(2026, 11, 20, 0, 30, tzinfo=SH)
WAIVED = "waived: Gilbert's syndrome documented by Wang Fang on 2026-11-20"
NOTE = "Recurrent unconjugated hyperbilirubinaemia since youth; normal haemolysis work-up; UGT1A1*28 homozygous."


@pytest.fixture
def investigator(db):
    _, investigator = staff_users()
    investigator.first_name, investigator.last_name = "Wang", "Fang"  # shown as "Wang Fang"
    investigator.save()
    return investigator


@pytest.fixture
def coordinator(db):
    return staff_users()[0]


def _screened(trial, number="G01", **labs) -> Participant:
    with time_machine.travel(RECORDED_AT - dt.timedelta(days=1), tick=False):
        return eligible_participant(trial, number=number, **labs)


def _record(participant, by, *, documented=True, note=NOTE):
    with time_machine.travel(RECORDED_AT, tick=False):
        return services.gilbert_diagnosis_record(participant=participant, documented=documented, note=note, by=by)


def _e14(participant):
    return ScreeningRecord.objects.get(participant=participant).assessments.get(code="E14")


def _refused(call, code: str) -> DomainError:
    with pytest.raises(DomainError) as refused:
        call()
    assert refused.value.code == code, refused.value.message
    return refused.value


# --- the service -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bilirubin", "documented", "status", "e14"),
    [
        ("1.4", False, "eligible", "met"),
        ("1.5", False, "screen_failed", "not_met"),  # the limit itself excludes (≥)
        ("2.0", False, "screen_failed", "not_met"),
        ("1.4", True, "eligible", "met"),
        ("1.5", True, "eligible", "met"),
        ("2.0", True, "eligible", "met"),
    ],
)
def test_a_bilirubin_at_or_above_the_limit_excludes_unless_gilbert_syndrome_is_documented(
    nct_trial, investigator, bilirubin, documented, status, e14
):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal(bilirubin))
    if documented:
        _record(participant, investigator)
    participant.refresh_from_db()
    assert (participant.status, _e14(participant).verdict) == (status, e14)
    waived = documented and Decimal(bilirubin) >= Decimal("1.5")
    assert (WAIVED in _e14(participant).reason) is waived


def test_bilirubin_twice_the_limit_is_excluded_then_passes_with_the_documented_diagnosis(nct_trial, investigator):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    assert participant.status == Participant.Status.SCREEN_FAILED
    assert "Total bilirubin 2.00×ULN is ≥ 1.5×ULN" in _e14(participant).reason

    _record(participant, investigator)

    participant.refresh_from_db()
    assert participant.status == Participant.Status.ELIGIBLE
    assert f"Total bilirubin 2.00×ULN is ≥ 1.5×ULN, {WAIVED}" in _e14(participant).reason
    assert participant.history.latest().history_change_reason == "Eligibility evaluated: eligible"


@pytest.mark.parametrize(
    ("lab", "value", "reason"),
    [
        ("alt_x_uln", "2.5", "ALT 2.50×ULN is ≥ 2.0×ULN"),  # as stored: two decimals
        ("ast_x_uln", "2.0", "AST 2.00×ULN is ≥ 2.0×ULN"),
        ("alp_x_uln", "1.5", "ALP 1.50×ULN is ≥ 1.5×ULN"),
    ],
)
def test_aminotransferase_and_alp_breaches_still_exclude_with_gilbert_syndrome_documented(
    nct_trial, investigator, lab, value, reason
):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"), **{lab: Decimal(value)})
    _record(participant, investigator)
    participant.refresh_from_db()
    assert participant.status == Participant.Status.SCREEN_FAILED
    assert _e14(participant).verdict == "not_met" and reason in _e14(participant).reason


def test_who_and_when_are_recorded_and_kept_in_the_history(nct_trial, investigator):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    diagnosis = _record(participant, investigator)
    diagnosis.refresh_from_db()
    assert (diagnosis.documented, diagnosis.note, diagnosis.recorded_by) == (True, NOTE, investigator)
    assert diagnosis.recorded_at == RECORDED_AT
    first = diagnosis.history.get()
    assert first.history_user == investigator
    assert first.history_change_reason == "Gilbert's syndrome documented: the E14 bilirubin limit is waived"


def test_a_second_answer_revises_the_first_and_the_limit_applies_again(nct_trial, investigator):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    _record(participant, investigator)
    _record(participant, investigator, documented=False, note="Haemolysis found: not Gilbert's syndrome.")
    participant.refresh_from_db()
    assert participant.status == Participant.Status.SCREEN_FAILED
    assert GilbertSyndromeDiagnosis.objects.filter(participant=participant).count() == 1
    latest = GilbertSyndromeDiagnosis.objects.get(participant=participant).history.latest()
    assert (
        latest.history_change_reason == "Gilbert's syndrome not documented: the E14 bilirubin limit applies (revised)"
    )
    assert latest.documented is False


def test_site_staff_cannot_record_gilbert_syndrome(nct_trial, coordinator):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    error = _refused(lambda: _record(participant, coordinator), "permission_denied")
    assert "investigators only" in error.message
    assert not GilbertSyndromeDiagnosis.objects.exists()
    participant.refresh_from_db()
    assert participant.status == Participant.Status.SCREEN_FAILED


@pytest.mark.parametrize("role", ROLES)
def test_only_the_investigator_role_may_record_gilbert_syndrome(role):
    group = Group.objects.get(name=role)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert ("add_gilbertsyndromediagnosis" in codenames) is (role == INVESTIGATOR)
    assert ("change_gilbertsyndromediagnosis" in codenames) is (role == INVESTIGATOR)
    assert ("view_gilbertsyndromediagnosis" in codenames) is (role != SPONSOR)  # screening data: not for sponsors


@pytest.mark.parametrize(
    ("documented", "note", "code"),
    [
        (True, "", "note_required"),
        (True, "   ", "note_required"),
        (True, "x" * 2001, "note_required"),
        (True, "UGT1A1\x00", "note_required"),
        ("yes", NOTE, "invalid"),
        (None, NOTE, "invalid"),
    ],
)
def test_a_diagnosis_without_a_note_or_a_yes_or_no_is_refused_and_nothing_is_saved(
    nct_trial, investigator, documented, note, code
):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    _refused(lambda: _record(participant, investigator, documented=documented, note=note), code)
    assert not GilbertSyndromeDiagnosis.objects.exists()


def test_after_enrollment_the_diagnosis_can_no_longer_change(nct_trial, investigator):
    participant = _screened(nct_trial)
    Participant.objects.filter(pk=participant.pk).update(status=Participant.Status.ENROLLED)
    _refused(lambda: _record(participant, investigator), "screening_closed")


def test_the_database_keeps_one_diagnosis_per_participant_and_a_note(nct_trial, investigator):
    participant = _screened(nct_trial)
    base = {"participant": participant, "documented": True, "recorded_by": investigator, "recorded_at": RECORDED_AT}
    with pytest.raises(IntegrityError), transaction.atomic():
        GilbertSyndromeDiagnosis.objects.create(**base, note="")
    GilbertSyndromeDiagnosis.objects.create(**base, note=NOTE)
    with pytest.raises(IntegrityError), transaction.atomic():
        GilbertSyndromeDiagnosis.objects.create(**base, note=NOTE)


def test_the_protocol_file_sets_the_waiver_on_e14(nct_trial):
    assert nct_trial.criteria.get(code="E14").params["gilbert_waives_bilirubin"] is True


# --- the API -----------------------------------------------------------------------------------


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def test_an_investigator_records_gilbert_syndrome_over_the_api_and_eligibility_shows_the_waiver(
    nct_trial, investigator
):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    client = _client(investigator)
    url = f"/api/v1/participants/{participant.pk}/gilbert/"
    with time_machine.travel(RECORDED_AT, tick=False):
        response = client.post(url, {"documented": True, "note": NOTE}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["participant"], body["documented"], body["recorded_by"]) == (participant.pk, True, "investigator")
    assert dt.datetime.fromisoformat(body["recorded_at"]) == RECORDED_AT
    eligibility = client.get(f"/api/v1/participants/{participant.pk}/eligibility/").json()
    e14 = next(c for c in eligibility["criteria"] if c["code"] == "E14")
    assert eligibility["eligible"] is True and e14["verdict"] == "met" and WAIVED in e14["reason"]
    again = client.post(url, {"documented": False, "note": "Revised: haemolysis"}, format="json")
    assert again.status_code == 200 and again.json()["documented"] is False
    assert client.get(f"/api/v1/participants/{participant.pk}/eligibility/").json()["unmet"] == ["E14"]


@pytest.mark.parametrize("who", ["coordinator", "sponsor"])
def test_site_staff_and_sponsors_get_403_permission_denied(nct_trial, coordinator, who):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    user = coordinator if who == "coordinator" else UserFactory(username="sponsor", role=SPONSOR)
    response = _client(user).post(
        f"/api/v1/participants/{participant.pk}/gilbert/", {"documented": True, "note": NOTE}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert not GilbertSyndromeDiagnosis.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"documented": True, "note": ""}, "note_required"),
        ({"documented": True}, "invalid"),
        ({"note": NOTE}, "invalid"),
        ({"documented": "perhaps", "note": NOTE}, "invalid"),
    ],
)
def test_a_malformed_diagnosis_over_the_api_is_a_400(nct_trial, investigator, body, code):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    response = _client(investigator).post(f"/api/v1/participants/{participant.pk}/gilbert/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, code), response.json()
    assert not GilbertSyndromeDiagnosis.objects.exists()


# --- the admin ---------------------------------------------------------------------------------


def test_an_investigator_records_gilbert_syndrome_in_the_admin_from_the_screening_page(client, nct_trial, investigator):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    record = ScreeningRecord.objects.get(participant=participant)
    client.force_login(investigator)
    page = html.unescape(client.get(reverse("admin:cohorts_screeningrecord_change", args=[record.pk])).content.decode())
    add_url = reverse("admin:cohorts_gilbertsyndromediagnosis_add")
    assert "Not documented by an investigator: the bilirubin limit applies." in page
    assert f'href="{add_url}?participant={participant.pk}"' in page
    with time_machine.travel(RECORDED_AT, tick=False):
        response = client.post(add_url, {"participant": participant.pk, "documented": "on", "note": NOTE}, follow=True)
    assert response.status_code == 200
    assert any("Eligibility re-evaluated: Eligible." in str(m) for m in response.context["messages"])
    diagnosis = GilbertSyndromeDiagnosis.objects.get(participant=participant)
    assert diagnosis.recorded_by == investigator and diagnosis.history.get().history_user == investigator
    page = html.unescape(client.get(reverse("admin:cohorts_screeningrecord_change", args=[record.pk])).content.decode())
    assert "Documented by Wang Fang on 2026-11-20: the bilirubin limit is waived (not AST, ALT or ALP)." in page
    assert WAIVED in page


def test_a_diagnosis_without_a_note_is_refused_on_the_admin_form(client, nct_trial, investigator):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    client.force_login(investigator)
    response = client.post(
        reverse("admin:cohorts_gilbertsyndromediagnosis_add"),
        {"participant": participant.pk, "documented": "on", "note": "  "},
    )
    assert response.status_code == 200
    assert "Give the note (what the diagnosis rests on)." in html.unescape(response.content.decode())
    assert not GilbertSyndromeDiagnosis.objects.exists()


def test_site_staff_see_the_diagnosis_but_cannot_record_it_in_the_admin(client, nct_trial, coordinator):
    participant = _screened(nct_trial, bilirubin_x_uln=Decimal("2.0"))
    record = ScreeningRecord.objects.get(participant=participant)
    client.force_login(coordinator)
    assert client.get(reverse("admin:cohorts_gilbertsyndromediagnosis_add")).status_code == 403
    page = html.unescape(client.get(reverse("admin:cohorts_screeningrecord_change", args=[record.pk])).content.decode())
    assert "Not documented by an investigator: the bilirubin limit applies." in page
    assert "Record the investigator" not in page
