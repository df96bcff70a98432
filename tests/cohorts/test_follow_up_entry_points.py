"""The follow-up lifecycle's entry points: the beat schedule and its tasks, the API and the admin."""

import datetime as dt

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from cohorts import tasks
from cohorts.models import FollowUpVisit, LostToFollowUp, Participant
from config.celery import app
from core.roles import SPONSOR
from tests.cohorts.test_infusions_support import SH, T0, enrolled_cohort, frozen, infuse_cohort
from tests.factories import UserFactory, staff_users, token_for

pytestmark = pytest.mark.django_db
LATER = dt.datetime(2026, 12, 5, 9, tzinfo=SH)  # D1 and D7 of a participant infused at T0 are over


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def flagged(trial, size: int = 1) -> list[LostToFollowUp]:
    """``size`` participants infused and swept after their D7 window: D1 and D7 missed, each flagged (the
    protocol's limit is 2; the first of three has missed D14 too by then)."""
    _, participants = enrolled_cohort(trial, size=size)
    infuse_cohort(participants)
    with frozen(LATER if size == 1 else dt.datetime(2026, 12, 13, 9, tzinfo=SH)):
        tasks.sweep_trial_follow_up(trial.pk)
    return list(LostToFollowUp.objects.order_by("pk"))


def test_beat_runs_the_follow_up_sweep_on_an_interval_from_the_environment():
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-follow-up"]
    assert entry == {"task": "cohorts.tasks.sweep_follow_up", "schedule": float(settings.FOLLOW_UP_SWEEP_SECONDS)}
    assert {"cohorts.tasks.sweep_follow_up", "cohorts.tasks.sweep_trial_follow_up"} <= set(app.tasks)


@pytest.fixture
def eager_celery():
    """Run the per-trial task in-process even when REDIS_URL points Celery at a real broker (no worker here)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_the_beat_task_sends_one_sweep_per_trial_by_id_after_commit(
    nct_trial, django_capture_on_commit_callbacks, eager_celery
):
    _, participants = enrolled_cohort(nct_trial, size=1)
    infuse_cohort(participants)
    with frozen(LATER), django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert tasks.sweep_follow_up() == [nct_trial.pk]
    assert len(callbacks) == 1
    assert set(FollowUpVisit.objects.filter(code__in=("D1", "D7")).values_list("status", flat=True)) == {"missed"}
    assert Participant.objects.get().status == "ltfu_pending"


def test_an_investigator_confirms_over_the_api_and_site_staff_and_sponsors_cannot(nct_trial):
    (flag,) = flagged(nct_trial)
    coordinator, investigator = staff_users()
    sponsor = UserFactory(username="sponsor", role=SPONSOR)
    url = f"/api/v1/lost-to-follow-up/{flag.pk}/confirm/"
    assert _client(sponsor).get("/api/v1/lost-to-follow-up/").status_code == 403
    assert _client(coordinator).post(url, {"note": "No answer"}, format="json").status_code == 403
    listed = _client(coordinator).get("/api/v1/lost-to-follow-up/?state=pending").json()["results"]
    assert [(f["id"], f["participant_status"], f["missed_visits"], f["last_missed_visit_code"]) for f in listed] == [
        (flag.pk, "ltfu_pending", 2, "D7")
    ]
    blank = _client(investigator).post(url, {"note": ""}, format="json")
    assert blank.status_code == 400
    confirmed = _client(investigator).post(url, {"note": "Three calls, no answer"}, format="json")
    assert confirmed.status_code == 200, confirmed.json()
    assert (confirmed.json()["state"], confirmed.json()["participant_status"]) == ("confirmed", "lost_to_follow_up")
    again = _client(investigator).post(url, {"note": "again"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "lost_to_follow_up_not_pending")


def test_an_investigator_dismisses_over_the_api(nct_trial):
    (flag,) = flagged(nct_trial)
    url = f"/api/v1/lost-to-follow-up/{flag.pk}/dismiss/"
    response = _client(staff_users()[1]).post(url, {"note": "Reached by phone"}, format="json")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["participant_status"]) == ("dismissed", "in_follow_up")


@pytest.mark.parametrize("size", [1, 3])
def test_the_flag_list_takes_a_constant_number_of_queries(nct_trial, django_assert_max_num_queries, size):
    assert len(flagged(nct_trial, size)) == size
    client = _client(staff_users()[0])
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/v1/lost-to-follow-up/").json()["results"]) == size


@pytest.mark.parametrize("size", [1, 3])
def test_the_flag_changelist_takes_a_constant_number_of_queries(client, nct_trial, django_assert_max_num_queries, size):
    flagged(nct_trial, size)
    client.force_login(staff_users()[0])
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:cohorts_losttofollowup_changelist"))
    assert response.status_code == 200
    assert response.content.decode().count("Lost to follow-up? (investigator to confirm)") >= size


def test_an_investigator_confirms_in_the_admin_with_a_note_and_site_staff_see_no_action(client, nct_trial):
    (flag,) = flagged(nct_trial)
    coordinator, investigator = staff_users()
    changelist = reverse("admin:cohorts_losttofollowup_changelist")
    client.force_login(coordinator)
    assert "confirm_lost" not in client.get(changelist).content.decode()
    client.force_login(investigator)
    assert "confirm_lost" in client.get(changelist).content.decode()
    asked = client.post(changelist, {"action": "confirm_lost", "_selected_action": [flag.pk], "index": 0})
    assert asked.status_code == 200 and "note" in asked.content.decode()
    client.post(changelist, {"action": "confirm_lost", "_selected_action": [flag.pk], "apply": "yes", "note": ""})
    flag.refresh_from_db()
    assert flag.state == "pending"
    done = client.post(
        changelist,
        {"action": "confirm_lost", "_selected_action": [flag.pk], "apply": "yes", "note": "Letter returned"},
        follow=True,
    )
    assert "Confirmed: lost to follow-up" in done.content.decode()
    flag.refresh_from_db()
    assert (flag.state, flag.decided_by, flag.participant.status) == ("confirmed", investigator, "lost_to_follow_up")


def test_a_visit_the_sweep_missed_can_still_be_recorded_in_the_admin(client, nct_trial):
    flagged(nct_trial)
    visit = FollowUpVisit.objects.get(code="D7")
    url = reverse("admin:cohorts_followupvisit_change", args=[visit.pk])
    with frozen(T0 + dt.timedelta(days=20)):
        client.force_login(staff_users()[0])  # the session starts at the frozen time
        response = client.post(
            url, {"outcome": "completed", "visit_date": "2026-12-02", "change_reason": "Entered late"}, follow=True
        )
    assert response.status_code == 200
    visit.refresh_from_db()
    assert (visit.status, visit.done_on) == ("completed", dt.date(2026, 12, 2))
    assert Participant.objects.get().status == "in_follow_up"  # she came back: the flag is dismissed
