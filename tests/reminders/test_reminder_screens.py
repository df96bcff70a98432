"""In-app reminders: GET /api/v1/reminders/ (own only; sponsors none), "My reminders" with its count on the
admin index, and the data manager's log with "Send again"."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from reminders import services
from reminders.models import Reminder
from tests.factories import UserFactory, token_for

pytestmark = pytest.mark.django_db


def _remind(site, n, *, kind="visit-window-opens", user=None, due=None, **kwargs):
    return services.reminder_schedule(
        kind=kind, subject=f"visit:{n}", subject_label=f"Day 7 visit {n}", trial=site.trial, site=site,
        due_at=due or timezone.now() - timedelta(minutes=1), recipient_user=user, **kwargs,
    )  # fmt: skip


def _api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def test_a_user_lists_her_own_and_her_roles_reminders_and_nobody_elses(site, nurse, investigator):
    mine = _remind(site, 1)
    _remind(site, 2, kind="dlt-decision")  # the investigators'
    member = UserFactory(role="Safety committee")
    _remind(site, 3, kind="review-signature", user=member)
    cancelled = _remind(site, 4)
    services.reminder_cancel(subject="visit:4", reason="recorded")
    response = _api(nurse).get("/api/v1/reminders/")
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [mine.pk]
    assert cancelled.pk not in [r["id"] for r in response.json()["results"]]
    row = response.json()["results"][0]
    assert (row["kind"], row["recipient"], row["safety"], row["trial"]) == (
        "visit-window-opens", "role: Site staff", False, site.trial.registry_id,
    )  # fmt: skip
    assert [r["kind"] for r in _api(member).get("/api/v1/reminders/").json()["results"]] == ["review-signature"]


def test_a_sponsor_gets_no_reminders(site):
    _remind(site, 1)
    sponsor = UserFactory(role="Sponsor", is_staff=False)
    assert _api(sponsor).get("/api/v1/reminders/").status_code == 403


def test_an_anonymous_reader_is_refused():
    assert APIClient().get("/api/v1/reminders/").status_code == 401


@pytest.mark.parametrize("rows", [3, 30])
def test_the_reminder_list_takes_a_constant_number_of_queries(site, nurse, rows, django_assert_max_num_queries):
    for n in range(rows):
        _remind(site, n)
    client = _api(nurse)
    with django_assert_max_num_queries(10):  # 8, and the reader's sites and trials (trial.access: 2 queries)
        response = client.get("/api/v1/reminders/")
    assert response.json()["count"] == rows


def test_the_admin_index_shows_how_many_of_my_reminders_are_open(site, nurse, client):
    sent = _remind(site, 1)
    Reminder.objects.filter(pk=sent.pk).update(state=Reminder.State.SENT, sent_at=timezone.now())
    _remind(site, 2)  # due, being sent
    _remind(site, 3, due=timezone.now() + timedelta(days=3))  # not due yet
    resolved = _remind(site, 4)
    Reminder.objects.filter(pk=resolved.pk).update(state=Reminder.State.SENT, sent_at=timezone.now())
    services.reminder_cancel(subject="visit:4", reason="visit recorded")  # marks the sent one resolved
    client.force_login(nurse)
    page = client.get(reverse("admin:index")).content.decode()
    assert "My reminders: 2 open" in page


@pytest.mark.parametrize("rows", [3, 30])
def test_my_reminders_changelist_shows_times_in_the_sites_zone_in_constant_queries(
    site, nurse, client, rows, django_assert_max_num_queries
):
    for n in range(rows):
        _remind(site, n)
    client.force_login(nurse)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:reminders_myreminder_changelist"))
    assert page.status_code == 200
    assert "(Asia/Shanghai)" in page.content.decode()


def test_the_reminder_log_is_the_data_managers_and_not_the_nurses(site, nurse, client):
    _remind(site, 1)
    client.force_login(nurse)
    assert client.get(reverse("admin:reminders_reminder_changelist")).status_code == 403
    client.force_login(UserFactory(role="Data manager"))
    assert client.get(reverse("admin:reminders_reminder_changelist") + "?state__exact=pending").status_code == 200


@pytest.mark.parametrize("rows", [3, 30])
def test_the_reminder_log_changelist_takes_a_constant_number_of_queries(
    site, client, rows, django_assert_max_num_queries
):
    for n in range(rows):
        _remind(site, n)
    client.force_login(UserFactory(role="Data manager"))
    with django_assert_max_num_queries(14):
        assert client.get(reverse("admin:reminders_reminder_changelist")).status_code == 200


def test_the_data_manager_sends_a_reminder_again_with_a_reason_through_the_admin(site, client):
    reminder = _remind(site, 1)
    Reminder.objects.filter(pk=reminder.pk).update(state=Reminder.State.SENT, sent_at=timezone.now())
    client.force_login(UserFactory(role="Data manager"))
    url = reverse("admin:reminders_reminder_changelist")
    asked = client.post(url, {"action": "send_again", "_selected_action": [reminder.pk]})
    assert "Reason" in asked.content.decode()
    client.post(url, {"action": "send_again", "_selected_action": [reminder.pk], "apply": "1", "reason": "lost mail"})
    copy = Reminder.objects.get(dedupe_key=f"{reminder.dedupe_key}:again:1")
    assert copy.state == Reminder.State.PENDING
    assert "lost mail" in copy.history.first().history_change_reason


def test_muting_from_my_reminders_mutes_follow_up_kinds_and_refuses_safety_kinds(site, investigator, client):
    visit = _remind(site, 1, kind="visit-window-opens")
    Reminder.objects.filter(pk=visit.pk).update(recipient_role="Investigator")
    dlt = _remind(site, 2, kind="dlt-decision")
    client.force_login(investigator)
    url = reverse("admin:reminders_myreminder_changelist")
    page = client.post(url, {"action": "mute_kind", "_selected_action": [visit.pk, dlt.pk]}, follow=True)
    text = page.content.decode()
    assert "is muted for you" in text
    assert "cannot be muted" in text
    assert list(investigator.reminder_mutes.values_list("kind", flat=True)) == ["visit-window-opens"]
