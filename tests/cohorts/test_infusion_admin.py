"""The bedside in the admin: a nurse records the infusion, sees a rate off the protocol at once, and the
deviation, DLT window and visits appear without anyone creating them by hand."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from cohorts.models import FollowUpVisit, Infusion, Participant, ProtocolDeviation
from tests.cohorts.test_infusions_support import (
    DAY,
    HOUR,
    SCHEDULE,
    SH,
    T0,
    enrolled_cohort,
    frozen,
    infuse,
    infuse_cohort,
    nurse,
    start,
)

pytestmark = pytest.mark.django_db

INLINES = ("readings", "vitals", "interruptions")


def _split(name: str, moment: dt.datetime) -> dict:
    local = moment.astimezone(SH)
    return {f"{name}_0": local.strftime("%Y-%m-%d"), f"{name}_1": local.strftime("%H:%M:%S")}


def _inlines(readings=(), vitals=()) -> dict:
    data = {}
    for prefix, rows in zip(INLINES, (readings, vitals, ()), strict=True):
        data |= {
            f"{prefix}-TOTAL_FORMS": len(rows),
            f"{prefix}-INITIAL_FORMS": 0,
            f"{prefix}-MIN_NUM_FORMS": 0,
            f"{prefix}-MAX_NUM_FORMS": 1000,
        }
        for n, row in enumerate(rows):
            for key, value in row.items():
                if isinstance(value, dt.datetime):
                    data |= _split(f"{prefix}-{n}-{key}", value)
                else:
                    data[f"{prefix}-{n}-{key}"] = value
    return data


def _start_post(participant, when=T0, readings=(), **overrides) -> dict:
    data = {
        "participant": participant.pk,
        **_split("started_at", when),
        "product_lot": "HM-2611-01",
        **_split("product_expiry", when + 6 * HOUR),
        "cells_in_product": "",
        "set_drop_factor": "",
        "volume_to_give_ml": "100.0",
        "premedication": "Loratadine 10 mg",
    }
    return (
        data
        | _inlines(
            readings=readings,
            vitals=[
                {"timepoint": "before", "measured_at": when, "systolic_bp": 125, "diastolic_bp": 80, "heart_rate": 72}
            ],
        )
        | overrides
    )


@pytest.fixture
def cohort_of_three(nct_trial):
    return enrolled_cohort(nct_trial)


@pytest.fixture
def bedside(client, settings):
    settings.SESSION_COOKIE_AGE = 3 * 365 * 24 * 3600  # the tests travel weeks ahead of the login
    client.force_login(nurse())
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_add_page_shows_who_can_be_infused_now_and_the_rate_check(bedside, cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0):
        page = bedside.get(reverse("admin:cohorts_infusion_add")).content.decode()
    assert f"{participants[0].study_id} (sentinel)</td><td>Can be infused now." in page
    assert f"Sentinel first: {participants[0].study_id} is the sentinel of cohort 1" in page
    # The rate check is a static script the page loads (cohorts/static/cohorts/admin/rate_guide.js).
    script = Path(finders.find("cohorts/admin/rate_guide.js")).read_text(encoding="utf-8")
    assert 'id="rate-guide"' in page and "Protocol rate 20–25 drops/min." in page
    assert 'src="/static/cohorts/admin/rate_guide.js"' in page and "/drops_per_minute$/" in script


def test_a_nurse_records_the_infusion_and_is_warned_at_once_of_a_rate_off_the_protocol(bedside, cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0 + dt.timedelta(minutes=15)):
        response = bedside.post(
            reverse("admin:cohorts_infusion_add"),
            _start_post(
                participants[0],
                readings=[
                    {"observed_at": T0 + dt.timedelta(minutes=5), "drops_per_minute": "22"},
                    {"observed_at": T0 + dt.timedelta(minutes=10), "drops_per_minute": "25.1"},
                ],
            ),
            follow=True,
        )
    assert response.status_code == 200
    infusion = Infusion.objects.get()
    assert (infusion.status, infusion.administered_by, infusion.premedication) == (
        "in_progress",
        nurse(),
        "Loratadine 10 mg",
    )
    deviation = ProtocolDeviation.objects.get()
    assert deviation.drip_rate_reading == infusion.readings.get(out_of_range=True)
    assert any("25.1 drops/min" in m and f"deviation #{deviation.pk} (major)" in m for m in _messages(response))
    assert infusion.vitals.get().systolic_bp == 125
    page = bedside.get(reverse("admin:cohorts_infusion_change", args=[infusion.pk])).content.decode()
    assert "✘ outside 20–25" in page and "Protocol rate 20–25 drops/min = 60.0–75.0 mL/h" in page


def test_finishing_in_the_admin_starts_the_dlt_window_and_plans_the_visits(bedside, cohort_of_three):
    _, participants = cohort_of_three
    infusion = start(participants[0], T0)
    with frozen(T0 + 2 * HOUR):
        response = bedside.post(
            reverse("admin:cohorts_infusion_change", args=[infusion.pk]),
            {
                "outcome": "complete",
                **_split("finished_at", T0 + HOUR),
                "cells_given": "54000000",
                "volume_given_ml": "70.0",
                "why_stopped": "",
                **_inlines(),
            },
            follow=True,
        )
    assert response.status_code == 200
    infusion.refresh_from_db()
    assert infusion.status == Infusion.Status.COMPLETED and infusion.cells_administered == 54_000_000
    participant = Participant.objects.get(pk=participants[0].pk)
    assert (participant.status, participant.dlt_window_start) == ("infused", dt.date(2026, 11, 25))
    assert FollowUpVisit.objects.filter(participant=participant).count() == 7
    assert "the DLT window started" in " ".join(_messages(response))
    # A finished infusion is a record: its page is read-only.
    page = bedside.get(reverse("admin:cohorts_infusion_change", args=[infusion.pk])).content.decode()
    assert 'name="outcome"' not in page


def _finish_post(minutes: int, volume: str = "100", **overrides) -> dict:
    data = {
        "outcome": "complete",
        **_split("finished_at", T0 + dt.timedelta(minutes=minutes)),
        "cells_given": "60000000",
        "volume_given_ml": volume,
        "why_stopped": "",
        **_inlines(),
    }
    return data | overrides


def test_an_implausible_average_rate_is_refused_on_the_form_until_the_nurse_confirms_it(bedside, cohort_of_three):
    _, participants = cohort_of_three
    infusion = start(participants[0], T0)
    url = reverse("admin:cohorts_infusion_change", args=[infusion.pk])
    with frozen(T0 + 10 * dt.timedelta(minutes=1)):
        refused = bedside.post(url, _finish_post(3))
        assert refused.status_code == 200
        page = refused.content.decode()
        assert "The average rate, 666.7 drops/min = 100 mL × 20 drops/mL ÷ 3 min of running time" in page
        assert "Check the entry, or confirm it." in page and 'value="100"' in page
        infusion.refresh_from_db()
        assert infusion.status == "in_progress" and ProtocolDeviation.objects.count() == 0
        response = bedside.post(url, _finish_post(3, confirm_implausible_rate="on"), follow=True)
    infusion.refresh_from_db()
    assert (infusion.status, infusion.average_drops_per_minute, infusion.implausible_rate_confirmed) == (
        "completed",
        Decimal("666.7"),
        True,
    )
    deviation = ProtocolDeviation.objects.get(category="infusion_rate")
    assert any(f"major deviation #{deviation.pk} opened" in m for m in _messages(response))
    page = bedside.get(url).content.decode()
    assert f"666.7 drops/min ✘ outside 20–25</strong> (deviation #{deviation.pk})" in page
    assert "confirmed as entered although implausible" in page


@pytest.mark.parametrize(("minutes", "shown"), [(80, "25.0 drops/min ✔ in range"), (101, "19.8 drops/min ✘ outside")])
def test_the_infusion_page_and_list_show_the_average_rate(bedside, cohort_of_three, minutes, shown):
    _, participants = cohort_of_three
    infusion = start(participants[0], T0)
    with frozen(T0 + 2 * HOUR):
        bedside.post(reverse("admin:cohorts_infusion_change", args=[infusion.pk]), _finish_post(minutes))
        page = bedside.get(reverse("admin:cohorts_infusion_change", args=[infusion.pk])).content.decode()
        listing = bedside.get(reverse("admin:cohorts_infusion_changelist")).content.decode()
    assert shown in page
    assert ("average 19.8 drops/min" in listing) is (minutes == 101)


def test_untouched_extra_rows_of_the_bedside_form_are_not_taken_for_a_reading(bedside, cohort_of_three):
    _, participants = cohort_of_three
    infusion = start(participants[0], T0)
    with frozen(T0 + HOUR):
        page = bedside.get(reverse("admin:cohorts_infusion_change", args=[infusion.pk])).content.decode()
        assert 'name="initial-readings-0-observed_at_0"' in page  # the prefilled time travels with the form
        untouched = {
            **_split("readings-0-observed_at", T0 + HOUR),
            **_split("initial-readings-0-observed_at", T0 + HOUR),
            "readings-0-drops_per_minute": "",
            "vitals-0-timepoint": "during",
            **_split("vitals-0-measured_at", T0 + HOUR),
            **_split("initial-vitals-0-measured_at", T0 + HOUR),
        }
        data = {**_inlines(), "readings-TOTAL_FORMS": 1, "vitals-TOTAL_FORMS": 1, **untouched, "outcome": ""}
        response = bedside.post(reverse("admin:cohorts_infusion_change", args=[infusion.pk]), data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert infusion.readings.count() == 0 and infusion.vitals.count() == 0


def test_a_hold_refuses_the_form_with_until_when_and_why_and_keeps_what_was_typed(bedside, cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    with frozen(T0 + 3 * DAY):
        response = bedside.post(reverse("admin:cohorts_infusion_add"), _start_post(participants[1], T0 + 3 * DAY))
    assert response.status_code == 200
    page = response.content.decode()
    assert "the next infusion is possible from 2026-12-02 09:00 (Asia/Shanghai)" in page
    assert 'value="HM-2611-01"' in page
    assert Infusion.objects.count() == 1


@pytest.mark.parametrize(
    ("rate", "message"),
    [("fast", "must be a number"), ("0", "positive number"), ("-1", "positive number"),
     ("1\x00", "Null characters are not allowed")],
)  # fmt: skip
def test_a_reading_that_is_not_a_positive_number_is_refused_in_the_form_and_nothing_is_saved(
    bedside, cohort_of_three, rate, message
):
    _, participants = cohort_of_three
    with frozen(T0 + HOUR):
        response = bedside.post(
            reverse("admin:cohorts_infusion_add"),
            _start_post(
                participants[0], readings=[{"observed_at": T0 + dt.timedelta(minutes=5), "drops_per_minute": rate}]
            ),
        )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Infusion.objects.count() == 0 and ProtocolDeviation.objects.count() == 0


def test_an_expired_product_is_refused_in_the_form(bedside, cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0 + HOUR):
        response = bedside.post(
            reverse("admin:cohorts_infusion_add"), _start_post(participants[0], **_split("product_expiry", T0 - HOUR))
        )
    assert "expired at 2026-11-25 07:00 (Asia/Shanghai)" in response.content.decode()
    assert Infusion.objects.count() == 0


def test_the_participant_page_shows_the_infusion_dlt_window_and_visits_as_a_timeline(bedside, cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    with frozen(T0 + 3 * DAY):
        page = bedside.get(reverse("admin:cohorts_participant_change", args=[participants[0].pk])).content.decode()
        waiting = bedside.get(reverse("admin:cohorts_participant_change", args=[participants[1].pk])).content.decode()
    assert "Infusion and follow-up" in page
    assert "DLT window (day 0 = infusion day, last day included)" in page and "2026-11-25 to 2026-12-23" in page
    assert "Day 3 of 28" in page
    assert "Day 7 (day 7)" in page and "2026-12-01 to 2026-12-03" in page
    assert "next infusion is possible from 2026-12-02 09:00 (Asia/Shanghai)" in waiting


def test_a_visit_recorded_late_in_the_admin_warns_and_opens_a_minor_deviation(bedside, cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    visit = FollowUpVisit.objects.get(participant=participants[0], code="D7")
    with frozen(T0 + 10 * DAY):
        response = bedside.post(
            reverse("admin:cohorts_followupvisit_change", args=[visit.pk]),
            {"outcome": "completed", "visit_date": "2026-12-05", "why_missed": ""},
            follow=True,
        )
    visit.refresh_from_db()
    assert (visit.status, visit.done_on) == ("completed", dt.date(2026, 12, 5))
    assert any("outside its window" in m for m in _messages(response))
    assert ProtocolDeviation.objects.get(visit=visit).severity == "minor"


def test_a_future_visit_date_is_refused_in_the_admin_with_the_service_message(bedside, cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    visit = FollowUpVisit.objects.get(participant=participants[0], code="D7")
    with frozen(T0 + 2 * DAY):
        response = bedside.post(
            reverse("admin:cohorts_followupvisit_change", args=[visit.pk]),
            {"outcome": "completed", "visit_date": "2026-12-02", "why_missed": ""},
        )
    assert "The visit date cannot be in the future." in response.content.decode()
    visit.refresh_from_db()
    assert visit.status == FollowUpVisit.Status.SCHEDULED


def test_staff_record_and_close_a_deviation_in_the_admin(bedside, cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0):
        bedside.post(
            reverse("admin:cohorts_protocoldeviation_add"),
            {
                "participant": participants[0].pk,
                "category": "procedure",
                "severity": "minor",
                "description": "ECG not done",
                "occurred_on": "2026-11-25",
                "corrective_action": "",
            },
        )
        deviation = ProtocolDeviation.objects.get()
        assert (deviation.source, deviation.detected_by) == ("staff", nurse())
        url = reverse("admin:cohorts_protocoldeviation_change", args=[deviation.pk])
        refused = bedside.post(
            url,
            {
                "severity": "minor",
                "description": "ECG not done",
                "corrective_action": "",
                "close": "on",
                "change_reason": "Closing",
            },
        )
        assert "Give the corrective action before closing." in refused.content.decode()
        bedside.post(
            url,
            {
                "severity": "major",
                "description": "ECG not done",
                "corrective_action": "Checklist",
                "close": "on",
                "change_reason": "Investigator assessed",
            },
        )
    deviation.refresh_from_db()
    assert (deviation.status, deviation.severity) == ("closed", "major")
    assert deviation.history.latest().history_change_reason == "Investigator assessed"


@pytest.mark.parametrize("infused", [1, 3])
def test_the_infusion_visit_and_deviation_changelists_take_a_constant_number_of_queries(
    bedside, django_assert_max_num_queries, cohort_of_three, infused
):
    _, participants = cohort_of_three
    infusions = infuse_cohort(participants[:infused])
    from cohorts import services

    with frozen(SCHEDULE[infused - 1] + 2 * HOUR):
        for infusion in infusions:
            services.drip_rate_record(
                infusion=infusion,
                observed_at=infusion.started_at + dt.timedelta(minutes=5),
                drops_per_minute="19",
                by=nurse(),
            )
    for name, rows in (("infusion", infused), ("followupvisit", 7 * infused), ("protocoldeviation", infused)):
        with django_assert_max_num_queries(15):  # +2: the reader's site and trial assignments (trial.access)
            response = bedside.get(reverse(f"admin:cohorts_{name}_changelist"))
        assert response.status_code == 200
        assert response.context["cl"].result_count == rows
