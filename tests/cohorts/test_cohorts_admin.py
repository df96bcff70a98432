"""The coordinator's and investigator's path through the admin."""

import datetime as dt

import pytest
from django.urls import reverse

from cohorts import services
from cohorts.models import Cohort, Enrollment, Participant, ScreeningRecord
from tests.factories import ELIGIBLE_SCREENING, consent_document, eligible_participant, staff_users

pytestmark = pytest.mark.django_db


def _screening_post(participant, **overrides) -> dict:
    data = {"participant": participant.pk, "screening_date": dt.date.today().isoformat()}
    for name, value in {**ELIGIBLE_SCREENING, **overrides}.items():
        data[name] = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
    return data | {
        "fractures-TOTAL_FORMS": 0,
        "fractures-INITIAL_FORMS": 0,
        "fractures-MIN_NUM_FORMS": 0,
        "fractures-MAX_NUM_FORMS": 1000,
    }


def test_a_coordinator_screens_in_the_admin_and_sees_why_she_is_not_eligible(client, nct_trial):
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    response = client.post(
        reverse("admin:cohorts_participant_add"),
        {
            "trial": nct_trial.pk,
            "site": nct_trial.sites.get().pk,
            "screening_number": "S100",
            "initials": "ZH",
            "date_of_birth": "1958-06-01",
            "sex": "F",
        },
    )
    assert response.status_code == 302
    participant = Participant.objects.get(screening_number="S100")
    assert participant.history.latest().history_user == coordinator

    response = client.post(
        reverse("admin:cohorts_screeningrecord_add"), _screening_post(participant, weight_kg="80.0"), follow=True
    )
    assert response.status_code == 200
    record = ScreeningRecord.objects.get(participant=participant)
    assert record.verdict == ScreeningRecord.Verdict.NOT_ELIGIBLE
    page = client.get(reverse("admin:cohorts_screeningrecord_change", args=[record.pk])).content.decode()
    assert "I3" in page and "BMI 32.0" in page and "18–30" in page
    participant.refresh_from_db()
    assert participant.status == Participant.Status.SCREEN_FAILED


def test_only_an_investigator_can_confirm_a_judgment_criterion_and_is_recorded(client, nct_trial):
    coordinator, investigator = staff_users()
    participant = eligible_participant(nct_trial, number="S200", judge=False)
    url = reverse("admin:cohorts_judgmentconfirmation_add")
    client.force_login(coordinator)
    assert client.get(url).status_code == 403
    client.force_login(investigator)
    response = client.post(url, {"participant": participant.pk, "code": "E5", "satisfied": "on", "note": "No allergy"})
    assert response.status_code == 302
    confirmation = participant.judgments.get(code="E5")
    assert confirmation.confirmed_by == investigator and confirmation.confirmed_at is not None


def test_the_enroll_action_enrolls_and_reports_the_broken_rule_in_plain_words(client, nct_trial):
    coordinator, investigator = staff_users()
    cohort = services.cohort_open_first(trial=nct_trial, by=investigator)
    ready = [eligible_participant(nct_trial, number=f"S30{n}") for n in range(4)]
    client.force_login(coordinator)
    url = reverse("admin:cohorts_participant_changelist")
    for participant in ready:
        response = client.post(
            url, {"action": "enroll_into_open_cohort", "_selected_action": [participant.pk]}, follow=True
        )
    texts = [str(m) for m in response.context["messages"]]
    assert texts == [f"Screening S303 not enrolled: {cohort} is full (3 of 3)."]
    assert Enrollment.objects.filter(cohort=cohort).count() == 3
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.FULL


def test_consent_recorded_in_the_admin_is_obtained_by_the_logged_in_coordinator(client, nct_trial):
    from django.utils import timezone

    coordinator, _ = staff_users()
    participant = eligible_participant(nct_trial, number="S400", consent=False)
    document = consent_document(nct_trial)
    client.force_login(coordinator)
    signed = timezone.localtime(timezone.now() - dt.timedelta(hours=1))
    response = client.post(
        reverse("admin:cohorts_consentrecord_add"),
        {
            "participant": participant.pk,
            "document": document.pk,
            "signed_at_0": signed.strftime("%Y-%m-%d"),
            "signed_at_1": signed.strftime("%H:%M:%S"),
            "witness_name": "",
        },
    )
    assert response.status_code == 302
    assert participant.consents.get().obtained_by == coordinator
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ELIGIBLE


def test_cohort_state_cannot_be_edited_in_the_admin(client, nct_trial):
    _, investigator = staff_users()
    cohort = services.cohort_open_first(trial=nct_trial, by=investigator)
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="root", is_superuser=True))
    url = reverse("admin:cohorts_cohort_change", args=[cohort.pk])
    client.post(url, {"state": "closed", "change_reason": "try"})
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.OPEN
    assert 'name="state"' not in client.get(url).content.decode()


@pytest.mark.parametrize("participants", [1, 5])
def test_participant_and_cohort_changelists_take_a_constant_number_of_queries(
    client, nct_trial, django_assert_max_num_queries, participants
):
    coordinator, investigator = staff_users()
    cohort = services.cohort_open_first(trial=nct_trial, by=investigator)
    for n in range(participants):
        p = eligible_participant(nct_trial, number=f"Q{n}")
        if n < 3:
            services.enroll_participant(participant=p, cohort=cohort, by=coordinator)
    client.force_login(coordinator)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("admin:cohorts_participant_changelist")).status_code == 200
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:cohorts_cohort_changelist"))
    assert f"{min(participants, 3)} / 3" in page.content.decode()


def test_a_refused_consent_shows_the_reason_on_the_form_and_saves_nothing(client, nct_trial):
    from django.utils import timezone

    from cohorts.models import ConsentRecord

    coordinator, _ = staff_users()
    participant = eligible_participant(nct_trial, number="S500", consent=False)
    document = consent_document(nct_trial)
    client.force_login(coordinator)
    tomorrow = timezone.localtime(timezone.now() + dt.timedelta(days=1))
    response = client.post(
        reverse("admin:cohorts_consentrecord_add"),
        {
            "participant": participant.pk,
            "document": document.pk,
            "signed_at_0": tomorrow.strftime("%Y-%m-%d"),
            "signed_at_1": tomorrow.strftime("%H:%M:%S"),
            "witness_name": "",
        },
    )
    assert response.status_code == 200
    assert "Consent cannot be signed in the future." in response.content.decode()
    assert ConsentRecord.objects.count() == 0


def test_a_judgment_after_enrollment_is_refused_on_the_form(client, nct_trial):
    coordinator, investigator = staff_users()
    cohort = services.cohort_open_first(trial=nct_trial, by=investigator)
    participant = eligible_participant(nct_trial, number="S600")
    services.enroll_participant(participant=participant, cohort=cohort, by=coordinator)
    client.force_login(investigator)
    response = client.post(
        reverse("admin:cohorts_judgmentconfirmation_add"), {"participant": participant.pk, "code": "I4", "note": "late"}
    )
    assert response.status_code == 200
    assert "eligibility judgments can no longer change" in response.content.decode()
    assert not participant.judgments.filter(code="I4").exists()


NO_INLINE_ROWS = {"enrollments-TOTAL_FORMS": 0, "enrollments-INITIAL_FORMS": 0}


def test_correcting_a_participants_birth_date_in_the_admin_re_evaluates_eligibility(client, nct_trial):
    coordinator, _ = staff_users()
    participant = eligible_participant(nct_trial, number="S700")
    client.force_login(coordinator)
    url = reverse("admin:cohorts_participant_change", args=[participant.pk])
    response = client.post(
        url,
        {
            "initials": "WL",
            "date_of_birth": "1930-03-15",
            "sex": "F",
            "change_reason": "Birth year misread from the ID card",
            **NO_INLINE_ROWS,
        },
    )
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.date_of_birth == dt.date(1930, 3, 15)
    assert participant.status == Participant.Status.SCREEN_FAILED  # 96 years old: outside 45–85 (I2)
    assert participant.history.filter(history_change_reason="Birth year misread from the ID card").exists()


def test_a_participants_details_cannot_change_after_enrollment(client, nct_trial):
    coordinator, investigator = staff_users()
    cohort = services.cohort_open_first(trial=nct_trial, by=investigator)
    participant = eligible_participant(nct_trial, number="S800")
    services.enroll_participant(participant=participant, cohort=cohort, by=coordinator)
    client.force_login(coordinator)
    url = reverse("admin:cohorts_participant_change", args=[participant.pk])
    response = client.post(
        url, {"initials": "WL", "date_of_birth": "1961-03-15", "sex": "M", "change_reason": "x", **NO_INLINE_ROWS}
    )
    assert response.status_code == 200 and "can no longer change" in response.content.decode()
    participant.refresh_from_db()
    assert (participant.sex, participant.date_of_birth) == ("F", dt.date(1960, 3, 15))
