"""The daily signature check: a break is recorded once as an IntegrityAlert and listed for those who act on it."""

import datetime as dt

import pytest
from django.urls import reverse

from core.roles import DATA_MANAGER, SAFETY_COMMITTEE, SITE_STAFF
from reminders import services as reminder_services
from reminders.models import Reminder
from safety import tasks
from safety.models import IntegrityAlert
from tests.factories import UserFactory
from tests.safety import test_escalation_gate as gate
from tests.safety.test_escalation_gate import AFTER_WINDOWS, HOUR, PASSWORD, committee, frozen

pytestmark = pytest.mark.django_db
reviewed = gate.reviewed  # the fixture: the low-dose cohort infused, its review open


@pytest.fixture(autouse=True)
def _task_in_process():
    """The beat task runs in this process (``.delay().get()``) even when REDIS_URL points Celery at a broker with
    no worker behind it here; tests/integration/ runs tasks on a real worker."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_the_daily_task_records_a_broken_chain_once_and_an_intact_one_never(reviewed, settings):
    members = committee()
    with frozen(AFTER_WINDOWS):
        gate.services.review_propose(review=reviewed, decision="escalate", by=members[0])
    with frozen(AFTER_WINDOWS + HOUR):
        gate.services.review_sign(review=reviewed, user=members[0], password=PASSWORD, meaning="approve")
    assert tasks.verify_signatures_daily.delay().get() is None
    assert IntegrityAlert.objects.count() == 0
    settings.SIGNATURE_KEYS = {settings.SIGNATURE_KEY_ID: "a-key-that-did-not-make-these-signatures-0123"}
    first = tasks.verify_signatures_daily.delay().get()
    again = tasks.verify_signatures_daily.delay().get()  # beat ran twice, or a worker retried: one alert a day
    alert = IntegrityAlert.objects.get()
    assert first == again == alert.pk
    assert (alert.kind, alert.problem_count, alert.signatures_checked) == ("signatures", 1, 1)
    assert alert.problems[0]["code"] == "digest_mismatch" and alert.problems[0]["sequence"] == 1


def test_a_broken_chain_reminds_the_data_manager_and_the_chair_once_and_they_cannot_mute_it(reviewed, settings):
    members = committee()  # members[0] holds safety.chair_review
    manager = UserFactory(username="dm1", email="dm1@example.org", role=DATA_MANAGER)
    members[0].email = "chair@example.org"
    members[0].save()
    with frozen(AFTER_WINDOWS):
        gate.services.review_propose(review=reviewed, decision="escalate", by=members[0])
    with frozen(AFTER_WINDOWS + HOUR):
        gate.services.review_sign(review=reviewed, user=members[0], password=PASSWORD, meaning="approve")
    settings.SIGNATURE_KEYS = {settings.SIGNATURE_KEY_ID: "a-key-that-did-not-make-these-signatures-0123"}
    tasks.verify_signatures_daily.delay().get()
    tasks.verify_signatures_daily.delay().get()
    alert = IntegrityAlert.objects.get()
    sent = Reminder.objects.filter(subject=f"integrity-alert:{alert.pk}").order_by("kind")
    assert [(r.kind, r.recipient_role, r.recipient_user_id, r.safety) for r in sent] == [
        ("integrity-alert", DATA_MANAGER, None, True),
        ("integrity-alert-chair", "", members[0].pk, True),
    ]
    assert reminder_services.reminder_recipients(sent[0]) == [manager.email]
    assert reminder_services.reminder_recipients(sent[1]) == ["chair@example.org"]
    subject, text, _ = reminder_services.reminder_message(sent[0])
    assert subject.startswith("Signature check failed: The signature check of") and "1 problem(s)" in subject
    assert "Integrity alerts" in text and "cannot be muted" in text
    assert sent[0].history.first().history_user.username == "system:beat"


def _alerts(n: int, *, start: int = 0) -> None:
    day = dt.date(2026, 12, 1)
    for i in range(start, start + n):
        problems = [{"trial": "NCT06949137", "sequence": i + 1, "code": "head_mismatch", "message": f"broken {i}"}]
        IntegrityAlert.objects.create(
            kind="signatures", detected_on=day - dt.timedelta(days=i), signatures_checked=3, problem_count=1,
            detected_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), problems=problems,
        )  # fmt: skip


@pytest.mark.parametrize("role", [DATA_MANAGER, SAFETY_COMMITTEE])
def test_the_data_manager_and_the_committee_list_the_alerts_in_constant_queries(
    client, django_assert_max_num_queries, role
):
    client.force_login(UserFactory(username="reader", role=role))
    url = reverse("admin:safety_integrityalert_changelist")
    for size in (2, 12):  # alerts are append-only: the ten more are added to the two
        _alerts(size - IntegrityAlert.objects.count(), start=IntegrityAlert.objects.count())
        with django_assert_max_num_queries(12):
            response = client.get(url)
        assert response.status_code == 200 and b"broken 1" in response.content
    alert = IntegrityAlert.objects.first()
    page = client.get(reverse("admin:safety_integrityalert_change", args=[alert.pk]))
    assert page.status_code == 200 and b"head_mismatch" in page.content and b'name="_save"' not in page.content


def test_site_staff_do_not_see_the_alerts_and_nobody_adds_or_deletes_one(client, admin_user):
    _alerts(1)
    client.force_login(UserFactory(username="nurse", role=SITE_STAFF))
    assert client.get(reverse("admin:safety_integrityalert_changelist")).status_code == 403
    client.force_login(admin_user)
    assert client.get(reverse("admin:safety_integrityalert_add")).status_code == 403
    alert = IntegrityAlert.objects.get()
    assert (
        client.post(reverse("admin:safety_integrityalert_delete", args=[alert.pk]), {"post": "yes"}).status_code == 403
    )
    assert IntegrityAlert.objects.count() == 1
