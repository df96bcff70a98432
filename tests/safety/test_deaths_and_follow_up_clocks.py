"""A death is serious by definition (ICH E2A II.B), through the service and in the database, and the
clocks a follow-up starts count from when its information was received (ICH E2A III.A)."""

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import DomainError
from safety import services
from safety.models import AdverseEvent
from tests.factories import staff_users
from tests.safety.conftest import DAY0, SHANGHAI

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)  # the `infused` fixture's frozen clock


def _values(**overrides) -> dict:
    return {
        "verbatim_term": "Cardiac arrest",
        "ctcae_term_text": "Cardiac arrest",
        "onset_date": DAY0 + dt.timedelta(days=5),
        "grade": 3,
        "relationship": "possible",
        "expected": False,
        "outcome": "not_recovered",
        "site_aware_at": NOW - dt.timedelta(hours=2),
    } | overrides


def _record(participant, **overrides) -> AdverseEvent:
    coordinator, _ = staff_users()
    return services.adverse_event_record(participant=participant, values=_values(**overrides), by=coordinator)


def _update(event, values, **kwargs) -> AdverseEvent:
    coordinator, _ = staff_users()
    return services.adverse_event_update(event=event, values=values, reason="Follow-up", by=coordinator, **kwargs)


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=SHANGHAI)


def _clocks(event) -> dict:
    return {c.kind: (c.started_at, c.due_at) for c in event.clocks.all()}


@pytest.mark.parametrize(
    "saved_as",
    [{"serious": False}, {"serious": True, "sae_hospitalisation": True}, {}],
    ids=["not serious", "serious without the death criterion", "seriousness left out"],
)
def test_a_fatal_event_is_saved_as_serious_with_the_death_criterion_and_starts_its_clocks(infused, saved_as):
    event = _record(infused, grade=5, outcome="fatal", **saved_as)
    assert (event.serious, event.sae_death) == (True, True)
    assert set(_clocks(event)) == {"sponsor_24h", "susar_7d", "susar_followup"}
    assert "ICH E2A II.B" in event.history.first().history_change_reason


def test_a_grade_4_event_may_be_recorded_as_not_serious(infused):
    event = _record(infused, grade=4, serious=False)
    assert (event.serious, event.sae_death, event.clocks.count()) == (False, False, 0)


@pytest.mark.parametrize(("grade", "outcome"), [(4, "not_recovered"), (3, "recovered")])
def test_the_death_criterion_on_an_event_that_was_not_fatal_is_refused(infused, grade, outcome):
    with pytest.raises(DomainError) as refused:
        _record(infused, grade=grade, outcome=outcome, serious=True, sae_death=True)
    assert refused.value.status_code == 400 and "sae_death" in refused.value.fields
    assert AdverseEvent.objects.count() == 0


def test_the_database_refuses_a_death_stored_as_not_serious(infused):
    event = _record(infused, grade=4)
    with pytest.raises(IntegrityError), transaction.atomic():
        AdverseEvent.objects.filter(pk=event.pk).update(grade=5, worst_grade=5, outcome="fatal")
    with pytest.raises(IntegrityError), transaction.atomic():
        AdverseEvent.objects.filter(pk=event.pk).update(
            grade=5, worst_grade=5, outcome="fatal", serious=True, sae_other_important=True
        )
    AdverseEvent.objects.filter(pk=event.pk).update(
        grade=5, worst_grade=5, outcome="fatal", serious=True, sae_death=True
    )  # with the death criterion it is what the rule wants
    assert AdverseEvent.objects.get(pk=event.pk).serious


def test_a_death_on_follow_up_makes_the_event_serious_and_starts_the_clocks_from_that_news(infused):
    event = _record(infused, grade=3, serious=False)
    assert event.clocks.count() == 0
    received = NOW - dt.timedelta(minutes=30)
    event = _update(event, {"grade": 5, "outcome": "fatal"}, information_received_at=received)
    assert (event.serious, event.sae_death, event.information_received_at) == (True, True, received)
    clocks = _clocks(event)
    assert clocks["sponsor_24h"] == (received, received + dt.timedelta(hours=24))
    assert clocks["susar_7d"] == (received, _end_of(dt.date(2026, 12, 9)))


def test_an_upgrade_to_fatal_ten_days_after_first_awareness_is_not_overdue_when_its_clock_starts(infused):
    aware = NOW - dt.timedelta(days=10)
    with time_machine.travel(aware + dt.timedelta(hours=1), tick=False):
        event = _record(infused, serious=True, sae_hospitalisation=True, site_aware_at=aware)
    assert set(_clocks(event)) == {"sponsor_24h", "susar_15d"}  # a non-fatal SUSAR: 15 calendar days
    event = _update(event, {"grade": 5, "outcome": "fatal"})  # the news arrives now (the default)
    clocks = _clocks(event)
    assert clocks["susar_7d"] == (NOW, _end_of(dt.date(2026, 12, 9)))  # day 0 is today, not 10 days ago
    assert clocks["susar_followup"] == (NOW, _end_of(dt.date(2026, 12, 17)))
    assert clocks["susar_15d"][1] == _end_of(dt.date(2026, 12, 7))  # the first report keeps its own deadline
    assert all(due > timezone.now() for start, due in clocks.values() if start == NOW)


def test_a_follow_up_that_makes_the_event_a_susar_counts_from_the_information_received(infused):
    aware = NOW - dt.timedelta(days=3)
    with time_machine.travel(aware + dt.timedelta(hours=1), tick=False):
        event = _record(infused, serious=True, sae_hospitalisation=True, relationship="unlikely", site_aware_at=aware)
    assert set(_clocks(event)) == {"sponsor_24h"}
    received = dt.datetime(2026, 12, 1, 23, 59, tzinfo=SHANGHAI)
    event = _update(event, {"relationship": "possible"}, information_received_at=received)
    assert _clocks(event)["susar_15d"] == (received, _end_of(dt.date(2026, 12, 16)))


def test_a_re_save_starts_no_second_clock(infused):
    event = _record(infused, grade=5, outcome="fatal")
    event = _update(event, {"verbatim_term": "Cardiac arrest (autopsy)"})
    assert event.clocks.count() == 3


@pytest.mark.parametrize(
    ("received", "code"),
    [(NOW - dt.timedelta(days=30), "invalid_time"), (NOW + dt.timedelta(hours=1), "invalid_time")],
    ids=["before awareness", "in the future"],
)
def test_follow_up_information_cannot_precede_awareness_or_come_from_the_future(infused, received, code):
    event = _record(infused)
    with pytest.raises(DomainError) as refused:
        _update(event, {"grade": 4}, information_received_at=received)
    assert refused.value.code == code
    assert AdverseEvent.objects.get(pk=event.pk).grade == 3


def test_follow_up_information_received_exactly_at_awareness_is_accepted(infused):
    event = _record(infused)
    event = _update(event, {"grade": 4}, information_received_at=event.site_aware_at)
    assert event.information_received_at == event.site_aware_at


def test_a_death_reported_over_the_api_as_not_serious_comes_back_serious(infused):
    from rest_framework.test import APIClient

    from tests.factories import token_for

    coordinator, _ = staff_users()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(coordinator)}")
    created = client.post(
        "/api/v1/adverse-events/",
        {
            "participant": infused.pk,
            "verbatim_term": "Fever",
            "ctcae_term_text": "Fever",
            "grade": 3,
            "onset_date": str(DAY0 + dt.timedelta(days=4)),
            "relationship": "unlikely",
            "outcome": "not_recovered",
            "site_aware_at": (NOW - dt.timedelta(hours=5)).isoformat(),
        },
        format="json",
    ).json()
    assert created["serious"] is False and created["clocks"] == []
    received = (NOW - dt.timedelta(hours=3)).isoformat()
    answer = client.patch(
        f"/api/v1/adverse-events/{created['id']}/",
        {
            "grade": 5,
            "outcome": "fatal",
            "serious": False,
            "information_received_at": received,
            "reason": "Died",
        },
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["serious"], body["sae_death"]) == (True, True)
    assert body["information_received_at"] == dt.datetime.fromisoformat(received).isoformat()
    assert [c["kind"] for c in body["clocks"]] == ["sponsor_24h"]  # unlikely related: not a SUSAR


def test_the_follow_up_form_asks_when_its_information_arrived_and_never_reuses_the_last_time(infused, client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    event = _record(infused)
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw-for-tests-only")
    client.force_login(admin)
    page = client.get(reverse("admin:safety_adverseevent_change", args=[event.pk])).content.decode()
    assert "Latest information received at" in page
    assert (
        event.information_received_at.astimezone(SHANGHAI).strftime("%Y-%m-%d")
        not in page.split('name="information_received_at')[1][:200]
    )
