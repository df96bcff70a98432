"""The cohort services schedule and cancel their reminders in their own transaction."""

import datetime as dt

import pytest

from cohorts import services
from reminders.models import Reminder
from tests.cohorts.test_infusions_support import DAY, SCHEDULE, SH, T0, enrolled_cohort, frozen, infuse, nurse

pytestmark = pytest.mark.django_db


def _visit_reminders(visit):
    return {r.kind: r for r in Reminder.objects.filter(subject=f"visit:{visit.pk}")}


@pytest.fixture
def cohort_of_three(nct_trial):
    return enrolled_cohort(nct_trial, size=3)


def test_completing_an_infusion_schedules_the_window_reminders_of_every_planned_visit(cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    visits = list(participants[0].visits.order_by("target_date"))
    assert Reminder.objects.filter(kind="visit-window-opens").count() == len(visits)
    assert Reminder.objects.filter(kind="visit-window-closes").count() == len(visits)
    d7 = participants[0].visits.get(code="D7")  # window 2026-12-01 .. 2026-12-03
    reminders = _visit_reminders(d7)
    # two days before the window opens, at 08:00 in Nanjing; stored in UTC
    assert reminders["visit-window-opens"].due_at == dt.datetime(2026, 11, 29, 0, 0, tzinfo=dt.UTC)
    assert reminders["visit-window-opens"].event_at == dt.datetime(2026, 12, 1, 0, 0, tzinfo=SH)
    assert reminders["visit-window-closes"].due_at == dt.datetime(2026, 12, 3, 8, 0, tzinfo=SH)
    assert reminders["visit-window-opens"].recipient_role == "Site staff"
    assert reminders["visit-window-opens"].dedupe_key == f"visit:{d7.pk}:visit-window-opens"


def test_the_trials_lead_time_moves_the_window_opens_reminder(cohort_of_three, nct_trial):
    nct_trial.visit_reminder_days = 5
    nct_trial.save()
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    d7 = participants[0].visits.get(code="D7")
    assert _visit_reminders(d7)["visit-window-opens"].due_at == dt.datetime(2026, 11, 26, 8, 0, tzinfo=SH)


@pytest.mark.parametrize("outcome", ["done", "missed"])
def test_recording_a_visit_cancels_its_reminders_and_no_other(cohort_of_three, outcome):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    d1, d7 = participants[0].visits.get(code="D1"), participants[0].visits.get(code="D7")
    with frozen(dt.datetime(2026, 11, 26, 12, 0, tzinfo=SH)):
        if outcome == "done":
            services.visit_complete(visit=d1, on=dt.date(2026, 11, 26), by=nurse())
        else:
            services.visit_miss(visit=d1, reason="she was travelling", by=nurse())
    assert {r.state for r in _visit_reminders(d1).values()} == {Reminder.State.CANCELLED}
    assert {r.state for r in _visit_reminders(d7).values()} == {Reminder.State.PENDING}


def test_the_sentinels_infusion_schedules_the_end_of_her_observation_and_later_ones_the_stagger_end(
    cohort_of_three,
):
    cohort, participants = cohort_of_three
    sentinel_infusion = infuse(participants[0], SCHEDULE[0])
    sentinel = Reminder.objects.get(kind="sentinel-ended")
    assert sentinel.subject == f"cohort:{cohort.pk}:sentinel"
    assert sentinel.due_at == sentinel_infusion.ended_at + 7 * DAY
    second = infuse(participants[1], SCHEDULE[1])
    stagger = Reminder.objects.get(kind="stagger-ended")
    assert stagger.due_at == second.ended_at + dt.timedelta(hours=24)
    infuse(participants[2], SCHEDULE[2])
    assert Reminder.objects.filter(kind="stagger-ended").count() == 1, "nobody waits after the last infusion"


def test_a_new_consent_version_asks_for_each_participants_reconsent_until_she_signs_it(cohort_of_three, nct_trial):
    from cohorts.models import ConsentDocument
    from tests.factories import UserFactory

    _, participants = cohort_of_three
    manager = UserFactory(role="Data manager")
    document = ConsentDocument(trial=nct_trial, version="2.0", title="ICF v2", effective_from=dt.date(2026, 12, 10))
    services.consent_document_save(document=document, reason="Amendment 1", by=manager)
    rows = Reminder.objects.filter(kind="reconsent")
    assert rows.count() == 3
    first = rows.get(subject=f"participant:{participants[0].pk}:consent")
    assert first.due_at == dt.datetime(2026, 12, 10, 8, 0, tzinfo=SH)
    assert first.recipient_role == "Site staff"
    with frozen(dt.datetime(2026, 12, 10, 10, 0, tzinfo=SH)):
        services.consent_record(
            participant=participants[0], document=document, signed_at=dt.datetime(2026, 12, 10, 9, 30, tzinfo=SH),
            by=nurse(),
        )  # fmt: skip
    assert Reminder.objects.get(pk=first.pk).state == Reminder.State.CANCELLED
    assert rows.filter(state=Reminder.State.PENDING).count() == 2
    services.consent_document_save(document=document, reason="typo in the title", by=manager)
    assert Reminder.objects.filter(kind="reconsent").count() == 3, "saving the version again adds nobody"


def test_only_the_data_manager_keeps_the_consent_versions(nct_trial):
    from cohorts.models import ConsentDocument
    from core.errors import DomainError

    document = ConsentDocument(trial=nct_trial, version="9.0", effective_from=dt.date(2026, 12, 10))
    with pytest.raises(DomainError) as refused:
        services.consent_document_save(document=document, reason="x", by=nurse())
    assert refused.value.code == "permission_denied"


def test_a_consent_version_added_in_the_admin_goes_through_the_service_and_asks_for_reconsent(
    cohort_of_three, nct_trial, client
):
    from cohorts.models import ConsentDocument
    from tests.factories import UserFactory

    client.force_login(UserFactory(role="Data manager"))
    response = client.post(
        "/admin/cohorts/consentdocument/add/",
        {"trial": nct_trial.pk, "version": "2.0", "title": "ICF v2", "effective_from": "2026-12-10"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    document = ConsentDocument.objects.get(version="2.0")
    assert document.history.first().history_change_reason == "Created in the admin"
    assert Reminder.objects.filter(kind="reconsent").count() == 3
