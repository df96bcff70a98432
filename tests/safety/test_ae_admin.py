"""Site staff and investigators in the admin: fast AE entry, DLT decisions, reporting clocks, term table."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from cohorts.models import Cohort
from safety import services
from safety.models import AdverseEvent, CtcaeTerm, ReportingClock
from tests.factories import staff_users
from tests.safety.conftest import DAY0, SHANGHAI

pytestmark = pytest.mark.django_db
GENERAL = "General disorders and administration site conditions"
ADD = "admin:safety_adverseevent_add"
CHANGELIST = "admin:safety_adverseevent_changelist"


@pytest.fixture
def fever(db):
    return CtcaeTerm.objects.create(term="Fever", soc=GENERAL, meddra_code="10016558")


def _form(participant, term, **overrides) -> dict:
    """What a coordinator fills in on the add page (booleans: present means ticked)."""
    aware = timezone.localtime(timezone.now() - dt.timedelta(hours=1), SHANGHAI)
    data = {
        "participant": participant.pk,
        "verbatim_term": "Fever after infusion",
        "ctcae_term": term.pk,
        "ctcae_term_text": "",
        "onset_date": str(DAY0 + dt.timedelta(days=10)),
        "resolution_date": "",
        "grade": "3",
        "relationship": "possible",
        "outcome": "recovering",
        "action_taken": "none",
        "site_aware_at_0": aware.strftime("%Y-%m-%d"),
        "site_aware_at_1": aware.strftime("%H:%M:%S"),
    } | overrides
    return {k: v for k, v in data.items() if v is not False}


def _record(participant, by, **overrides) -> AdverseEvent:
    values = {
        "verbatim_term": "Fever after infusion",
        "ctcae_term_text": "Fever",
        "onset_date": DAY0 + dt.timedelta(days=10),
        "grade": 3,
        "relationship": "possible",
        "outcome": "recovering",
        "site_aware_at": timezone.now() - dt.timedelta(hours=1),
    } | overrides
    return services.adverse_event_record(participant=participant, values=values, by=by)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- fast entry -----------------------------------------------------------------------------------------------------


def test_staff_enter_an_adverse_event_in_under_a_minute_with_one_post_kept_in_the_history(client, infused, fever):
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    page = client.get(reverse(ADD)).content.decode()
    for group in ("Event", "Grade and seriousness", "Causality", "Outcome", "Reporting"):
        assert f"<h2>{group}</h2>" in page or f">{group}<" in page
    assert 'type="radio" name="grade"' in page and 'type="radio" name="relationship"' in page
    assert "admin-autocomplete" in page

    response = client.post(reverse(ADD), _form(infused, fever))
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = AdverseEvent.objects.get()
    assert (event.participant, event.ctcae_term, event.grade, event.reported_by) == (infused, fever, 3, coordinator)
    record = event.history.get()
    assert (record.history_user, record.history_change_reason) == (coordinator, "Adverse event reported")


def test_a_related_grade_3_event_on_day_10_shows_as_a_dlt_candidate_in_the_admin_list(client, infused, fever):
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    response = client.post(reverse(ADD), _form(infused, fever), follow=True)
    assert any(m.startswith("DLT candidate:") and "day 10" in m for m in _messages(response))
    page = client.get(reverse(CHANGELIST) + "?dlt_status__exact=candidate").content.decode()
    assert "DLT candidate (investigator to decide)" in page and "Fever after infusion" in page
    confirmed = client.get(reverse(CHANGELIST) + "?dlt_status__exact=confirmed").content.decode()
    assert "Fever after infusion" not in confirmed


def test_a_serious_event_shows_its_24_hour_clock_in_the_admin_and_turns_red_when_overdue(client, infused, fever):
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    response = client.post(
        reverse(ADD),
        _form(infused, fever, serious="on", sae_hospitalisation="on", relationship="not_related"),
        follow=True,
    )
    assert any(m.startswith("Sponsor notification (24 h) due by") for m in _messages(response))
    event = AdverseEvent.objects.get()
    clock = event.clocks.get()
    due = f"{timezone.localtime(clock.due_at, SHANGHAI):%Y-%m-%d %H:%M}"
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert f"Sponsor notification (24 h): due by {due}" in page and "OVERDUE" not in page
    change = client.get(reverse("admin:safety_adverseevent_change", args=[event.pk])).content.decode()
    assert "Sponsor notification (24 h)" in change and due in change
    with time_machine.travel(clock.due_at + dt.timedelta(minutes=1), tick=False):
        client.force_login(coordinator)  # a day later: the 8-hour session has expired
        page = client.get(reverse(CHANGELIST) + "?report=overdue").content.decode()
        assert "OVERDUE since" in page and "#ba2121" in page
        clocks = client.get(reverse("admin:safety_reportingclock_changelist") + "?state=overdue").content.decode()
        assert "OVERDUE" in clocks and "Fever after infusion" in clocks
    assert "Fever after infusion" not in client.get(reverse(CHANGELIST) + "?report=none").content.decode()


def test_a_related_death_entered_in_the_admin_pauses_the_cohort_and_says_so(client, infused, fever):
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    response = client.post(
        reverse(ADD), _form(infused, fever, grade="5", outcome="fatal", serious="on", sae_death="on"), follow=True
    )
    assert Cohort.objects.get().state == Cohort.State.PAUSED
    assert any(m.startswith("Stopping rule:") and "paused" in m for m in _messages(response))


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ({"grade": "5", "outcome": "recovered"}, "A grade 5 event is fatal"),
        ({"serious": "on"}, "A serious event needs at least one seriousness criterion"),
        ({"onset_date": "2020-01-01"}, "is before consent"),
        ({"resolution_date": str(DAY0)}, "cannot resolve before its onset"),
        ({"grade": "6"}, "Select a valid choice"),
        ({"verbatim_term": "Fever\x00"}, "Null characters are not allowed"),
        ({"ctcae_term": ""}, "Choose a CTCAE term or write it as free text"),
    ],
)
def test_a_refused_event_comes_back_as_errors_on_the_form_with_nothing_saved(client, infused, fever, overrides, shown):
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    response = client.post(reverse(ADD), _form(infused, fever, **overrides))
    assert response.status_code == 200
    assert shown in response.content.decode()
    assert AdverseEvent.objects.count() == 0
    assert response.context["adminform"].form["verbatim_term"].value() == overrides.get(
        "verbatim_term", "Fever after infusion"
    )  # what she typed is still there


def test_a_follow_up_in_the_admin_needs_a_reason_and_keeps_it_in_the_history(client, infused, fever):
    coordinator, _ = staff_users()
    event = _record(infused, coordinator, grade=2)
    client.force_login(coordinator)
    url = reverse("admin:safety_adverseevent_change", args=[event.pk])
    data = _form(infused, fever, grade="3")
    del data["participant"]  # fixed once recorded
    refused = client.post(url, data)
    assert refused.status_code == 200 and "Give the reason for this change" in refused.content.decode()
    assert client.post(url, data | {"change_reason": "Worsened on day 12"}).status_code == 302
    event.refresh_from_db()
    assert (event.grade, event.worst_grade, event.dlt_status) == (3, 3, AdverseEvent.DltStatus.CANDIDATE)
    latest = event.history.latest()
    assert (latest.history_user, latest.history_change_reason) == (coordinator, "Worsened on day 12")


# --- DLT decisions --------------------------------------------------------------------------------------------------


def test_an_investigator_confirms_a_dlt_through_a_page_asking_for_the_reason(client, infused):
    coordinator, investigator = staff_users()
    event = _record(infused, coordinator)
    changelist = reverse(CHANGELIST)
    client.force_login(coordinator)
    assert "confirm_dlt" not in client.get(changelist).content.decode()  # staff cannot decide

    client.force_login(investigator)
    assert "confirm_dlt" in client.get(changelist).content.decode()
    asked = client.post(changelist, {"action": "confirm_dlt", "_selected_action": [event.pk], "index": 0})
    assert asked.status_code == 200
    page = asked.content.decode()
    assert 'name="reason"' in page and "day 10" in page
    blank = client.post(
        changelist, {"action": "confirm_dlt", "_selected_action": [event.pk], "apply": "yes", "reason": ""}
    )
    assert blank.status_code == 200 and "This field is required" in blank.content.decode()
    done = client.post(
        changelist,
        {"action": "confirm_dlt", "_selected_action": [event.pk], "apply": "yes", "reason": "Grade 3 fever, related"},
        follow=True,
    )
    event.refresh_from_db()
    assert (event.dlt_status, event.dlt_decided_by, event.dlt_reason) == (
        AdverseEvent.DltStatus.CONFIRMED,
        investigator,
        "Grade 3 fever, related",
    )
    assert any("DLT confirmed" in m for m in _messages(done))
    again = client.post(changelist, {"action": "reject_dlt", "_selected_action": [event.pk], "index": 0}, follow=True)
    assert "None of the selected events is a DLT candidate" in _messages(again)[0]


# --- reporting clocks -----------------------------------------------------------------------------------------------


def test_the_report_action_records_who_reported_to_whom_and_when(client, infused):
    coordinator, _ = staff_users()
    event = _record(infused, coordinator, serious=True, sae_hospitalisation=True, relationship="not_related")
    clock = event.clocks.get()
    changelist = reverse("admin:safety_reportingclock_changelist")
    client.force_login(coordinator)
    asked = client.post(changelist, {"action": "record_report", "_selected_action": [clock.pk], "index": 0})
    assert asked.status_code == 200 and 'name="reported_to"' in asked.content.decode()
    when = timezone.localtime(timezone.now() - dt.timedelta(minutes=30), SHANGHAI)
    done = client.post(
        changelist,
        {
            "action": "record_report",
            "_selected_action": [clock.pk],
            "apply": "yes",
            "reported_to": "Help Therapeutics PV",
            "done_at_0": when.strftime("%Y-%m-%d"),
            "done_at_1": when.strftime("%H:%M:%S"),
        },
        follow=True,
    )
    clock.refresh_from_db()
    assert (clock.done_by, clock.reported_to) == (coordinator, "Help Therapeutics PV")
    assert clock.done_at == when.replace(microsecond=0)
    assert any("reported to Help Therapeutics PV" in m for m in _messages(done))
    assert clock.history.latest().history_change_reason == "Reported to Help Therapeutics PV"


def test_a_report_time_in_the_future_is_refused_with_a_message(client, infused):
    coordinator, _ = staff_users()
    clock = _record(infused, coordinator, serious=True, sae_hospitalisation=True).clocks.first()
    client.force_login(coordinator)
    later = timezone.localtime(timezone.now() + dt.timedelta(days=1), SHANGHAI)
    done = client.post(
        reverse("admin:safety_reportingclock_changelist"),
        {
            "action": "record_report",
            "_selected_action": [clock.pk],
            "apply": "yes",
            "reported_to": "PV",
            "done_at_0": later.strftime("%Y-%m-%d"),
            "done_at_1": later.strftime("%H:%M:%S"),
        },
        follow=True,
    )
    assert done.status_code == 200
    assert any("not recorded" in m and "between awareness and now" in m for m in _messages(done))
    clock.refresh_from_db()
    assert clock.done_at is None


def test_clocks_cannot_be_added_or_edited_in_the_admin(client, infused):
    coordinator, _ = staff_users()
    clock = _record(infused, coordinator, serious=True, sae_hospitalisation=True).clocks.first()
    client.force_login(coordinator)
    assert client.get(reverse("admin:safety_reportingclock_add")).status_code == 403
    url = reverse("admin:safety_reportingclock_change", args=[clock.pk])
    client.post(url, {"done_by": coordinator.pk, "reported_to": "x"})
    clock.refresh_from_db()
    assert clock.done_at is None and clock.reported_to == ""


# --- the term table and the changelists -----------------------------------------------------------------------------


def test_the_ctcae_term_autocomplete_finds_terms_for_the_ae_page(client, infused, fever):
    CtcaeTerm.objects.create(term="Chills", soc=GENERAL)
    coordinator, _ = staff_users()
    client.force_login(coordinator)
    found = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "safety", "model_name": "adverseevent", "field_name": "ctcae_term", "term": "fev"},
    ).json()
    assert [r["text"] for r in found["results"]] == [str(fever)]


@pytest.mark.parametrize("events", [1, 6])
def test_safety_changelists_take_a_constant_number_of_queries(client, django_assert_max_num_queries, infused, events):
    coordinator, investigator = staff_users()
    for n in range(events):
        term = CtcaeTerm.objects.create(term=f"Term {n}", soc=GENERAL)
        _record(
            infused,
            coordinator,
            ctcae_term=term,
            ctcae_term_text="",
            onset_date=DAY0 + dt.timedelta(days=n),
            grade=1 + n % 3,
            serious=n % 2 == 0,
            sae_hospitalisation=n % 2 == 0,
        )
    assert ReportingClock.objects.exists()
    for user in (coordinator, investigator):
        client.force_login(user)
        for name, query in (
            ("adverseevent", ""),
            ("adverseevent", "?worst=3%2B&report=due&serious__exact=1"),
            ("reportingclock", ""),
            ("ctcaeterm", ""),
        ):
            with django_assert_max_num_queries(10):
                response = client.get(reverse(f"admin:safety_{name}_changelist") + query)
            assert response.status_code == 200, (name, query)


def test_the_ae_list_filters_by_worst_grade_cohort_seriousness_and_dlt_status(client, infused):
    coordinator, _ = staff_users()
    mild = _record(infused, coordinator, grade=1, verbatim_term="Mild headache")
    severe = _record(infused, coordinator, grade=4, serious=True, sae_hospitalisation=True, verbatim_term="Sepsis")
    client.force_login(coordinator)
    cohort = Cohort.objects.get()

    def shown(query: str) -> set[int]:
        response = client.get(reverse(CHANGELIST) + query)
        assert response.status_code == 200
        return {event.pk for event in response.context["cl"].result_list}

    assert shown("") == {mild.pk, severe.pk}
    assert shown("?worst=1") == {mild.pk}
    assert shown("?worst=3%2B") == {severe.pk}
    assert shown("?serious__exact=1") == {severe.pk}
    assert shown(f"?cohort={cohort.pk}") == {mild.pk, severe.pk}
    assert shown(f"?cohort={cohort.pk + 1}") == set()
    assert shown("?dlt_status__exact=candidate") == {severe.pk}
    assert shown("?report=due") == {severe.pk}
    assert shown("?report=none") == {mild.pk}
    assert f'class="field-cohort_label">{cohort.sequence}<' in client.get(reverse(CHANGELIST)).content.decode()


def test_the_participant_timeline_gives_each_event_on_the_infusion_axis_in_one_query(
    infused, fever, django_assert_num_queries
):
    from safety.selectors import participant_ae_timeline

    coordinator, investigator = staff_users()
    late = _record(
        infused,
        coordinator,
        grade=2,
        onset_date=DAY0 + dt.timedelta(days=20),
        resolution_date=DAY0 + dt.timedelta(days=25),
        outcome="recovered",
    )
    early = _record(infused, coordinator, ctcae_term=fever, ctcae_term_text="", onset_date=DAY0)
    services.dlt_decide(event=early, confirm=False, reason="Not related after all", by=investigator)
    with django_assert_num_queries(1):
        timeline = participant_ae_timeline(infused)
    assert [item["id"] for item in timeline] == [early.pk, late.pk]
    first, second = timeline
    assert first == {
        "id": early.pk,
        "term": "Fever",
        "verbatim_term": "Fever after infusion",
        "soc": "General disorders and administration site conditions",
        "onset": DAY0,
        "resolution": None,
        "ongoing": True,
        "onset_day": 0,
        "grade": 3,
        "worst_grade": 3,
        "serious": False,
        "relationship": "possible",
        "infusion_reaction": False,
        "dlt_status": "rejected",
        "dlt_status_display": "DLT rejected",
        "in_dlt_window": True,
    }
    assert (second["term"], second["onset_day"], second["resolution"], second["ongoing"], second["soc"]) == (
        "Fever",
        20,
        DAY0 + dt.timedelta(days=25),
        False,
        "",
    )
