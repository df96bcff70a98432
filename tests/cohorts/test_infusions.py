"""Infusion at the bedside: the rate, the dose, the sentinel and stagger holds, and what completing starts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from cohorts import selectors, services
from cohorts.models import (
    Cohort,
    DripRateReading,
    FollowUpVisit,
    Infusion,
    Participant,
    ProtocolDeviation,
    VitalSigns,
    ml_per_hour,
)
from core.errors import DomainError, InvalidInput, RuleViolation
from tests.cohorts.test_infusions_support import (
    DAY,
    HOUR,
    SCHEDULE,
    T0,
    complete,
    enrolled_cohort,
    frozen,
    infuse,
    infuse_cohort,
    nurse,
    start,
)
from tests.factories import UserFactory, eligible_participant

pytestmark = pytest.mark.django_db


@pytest.fixture
def cohort_of_three(nct_trial):
    return enrolled_cohort(nct_trial)


@pytest.fixture
def running(cohort_of_three):
    """The sentinel's infusion, started at T0 and still running."""
    _, participants = cohort_of_three
    return start(participants[0], T0)


def _refused(call, code: str) -> DomainError:
    with pytest.raises(DomainError) as refused:
        call()
    assert refused.value.code == code, refused.value.message
    return refused.value


# --- drip rate -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "flagged", "severity"),
    [
        ("19.9", True, "minor"),
        ("20", False, None),
        ("22.5", False, None),
        ("25", False, None),
        ("25.1", True, "major"),
    ],
)
def test_a_rate_outside_20_to_25_drops_per_minute_is_saved_flagged_and_opens_a_linked_deviation(
    running, rate, flagged, severity
):
    with frozen(T0 + 10 * 60 * dt.timedelta(seconds=1)):
        reading = services.drip_rate_record(
            infusion=running, observed_at=T0 + dt.timedelta(minutes=10), drops_per_minute=rate, by=nurse()
        )
    reading.refresh_from_db()
    assert reading.drops_per_minute == Decimal(rate)
    assert reading.out_of_range is flagged
    deviations = ProtocolDeviation.objects.filter(drip_rate_reading=reading)
    assert deviations.count() == (1 if flagged else 0)
    if flagged:
        deviation = deviations.get()
        assert (deviation.category, deviation.severity, deviation.source) == ("infusion_rate", severity, "system")
        assert deviation.infusion == running and deviation.participant == running.participant
        assert f"Drip rate {rate} drops/min" in deviation.description
        assert "the protocol's 20–25 drops/min" in deviation.description


@pytest.mark.parametrize(
    ("drops_per_minute", "drop_factor", "expected"),
    [
        ("20", 20, "60.0"),
        ("25", 20, "75.0"),
        ("19.9", 20, "59.7"),
        ("22", 15, "88.0"),
        ("21", 10, "126.0"),
        ("25", 60, "25.0"),
        ("23", 15, "92.0"),
        ("20.5", 15, "82.0"),
    ],
)
def test_ml_per_hour_is_drops_per_minute_times_60_over_the_drop_factor(drops_per_minute, drop_factor, expected):
    assert ml_per_hour(Decimal(drops_per_minute), drop_factor) == Decimal(expected)


def test_a_reading_derives_ml_per_hour_from_the_giving_set_of_its_infusion(cohort_of_three):
    _, participants = cohort_of_three
    infusion = start(participants[0], T0, drop_factor=15)
    with frozen(T0 + HOUR):
        reading = services.drip_rate_record(
            infusion=infusion, observed_at=T0 + 5 * dt.timedelta(minutes=1), drops_per_minute=22, by=nurse()
        )
    assert reading.ml_per_hour == Decimal("88.0")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("\x00", "invalid_rate"),
        ("2\x000", "invalid_rate"),
        ("fast", "invalid_rate"),
        ("", "invalid_rate"),
        (None, "invalid_rate"),
        (True, "invalid_rate"),
        ("NaN", "invalid_rate"),
        ("Infinity", "invalid_rate"),
        (10**30, "invalid_rate"),
        ("20.001", "invalid_rate"),
        ([20], "invalid_rate"),
        (-1, "rate_not_positive"),
        (0, "rate_not_positive"),
        ("0.00", "rate_not_positive"),
        ("-0", "rate_not_positive"),
    ],
)
def test_a_rate_that_is_not_a_positive_number_is_refused_and_nothing_is_saved(running, value, code):
    with frozen(T0 + HOUR):
        error = _refused(
            lambda: services.drip_rate_record(
                infusion=running, observed_at=T0 + HOUR, drops_per_minute=value, by=nurse()
            ),
            code,
        )
    assert isinstance(error, InvalidInput) and error.fields
    assert DripRateReading.objects.count() == 0 and ProtocolDeviation.objects.count() == 0


def test_a_rate_observed_outside_the_infusion_is_refused(running):
    with frozen(T0 + HOUR):
        _refused(
            lambda: services.drip_rate_record(infusion=running, observed_at=T0 - HOUR, drops_per_minute=22, by=nurse()),
            "observed_outside_infusion",
        )
        _refused(
            lambda: services.drip_rate_record(
                infusion=running, observed_at=T0 + 3 * HOUR, drops_per_minute=22, by=nurse()
            ),
            "date_in_future",
        )
    assert DripRateReading.objects.count() == 0


def test_the_database_refuses_a_rate_of_zero_and_a_flag_that_does_not_match_the_range(running):
    base = {
        "infusion": running,
        "observed_at": T0,
        "rate_min": Decimal(20),
        "rate_max": Decimal(25),
        "recorded_by": nurse(),
    }
    for values in (
        {"drops_per_minute": Decimal(0), "out_of_range": True},
        {"drops_per_minute": Decimal("25.1"), "out_of_range": False},
        {"drops_per_minute": Decimal("22"), "out_of_range": True},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            DripRateReading.objects.create(**base, **values)


# --- starting: malformed input and the rules -----------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"product_lot": "HM\x00-1"}, "invalid"),
        ({"product_lot": "   "}, "invalid"),
        ({"premedication": "paracetamol\x00"}, "invalid"),
        ({"volume_ml": "-1"}, "volume_negative"),
        ({"volume_ml": "lots"}, "invalid_volume"),
        ({"volume_ml": 10**30}, "invalid_volume"),
        ({"cells_planned": "6e7"}, "invalid_cells"),
        ({"cells_planned": 6.0e7}, "invalid_cells"),
        ({"cells_planned": 0}, "invalid_cells"),
        ({"cells_planned": -60_000_000}, "invalid_cells"),
        ({"cells_planned": 10**30}, "invalid_cells"),
        ({"drop_factor": 0}, "invalid_drop_factor"),
        ({"drop_factor": "20"}, "invalid_drop_factor"),
        ({"started_at": T0 + DAY}, "date_in_future"),
        ({"started_at": dt.datetime(2026, 11, 25, 8, 0)}, "invalid"),
        ({"started_at": T0 - 2 * DAY}, "started_before_enrollment"),
        ({"product_expiry": T0 - dt.timedelta(minutes=1)}, "product_expired"),
        ({"cells_planned": 120_000_000}, "dose_mismatch"),
        ({"vitals_before": {"systolic_bp": 80, "diastolic_bp": 120}}, "invalid_vitals"),
        ({"vitals_before": {"temperature_c": "fever"}}, "invalid_vitals"),
        ({"vitals_before": {"spo2_pct": 101}}, "invalid_vitals"),
        ({"vitals_before": {"pulse": 70}}, "invalid_vitals"),
    ],
)
def test_every_malformed_start_is_refused_with_a_clear_code_and_nothing_is_saved(cohort_of_three, overrides, code):
    _, participants = cohort_of_three
    error = _refused(lambda: start(participants[0], T0, **overrides), code)
    assert error.message and not error.message.startswith(code)
    assert Infusion.objects.count() == 0 and VitalSigns.objects.count() == 0
    participants[0].refresh_from_db()
    assert participants[0].status == Participant.Status.ENROLLED


def test_an_expired_product_is_refused_with_when_it_expired_in_the_site_zone(cohort_of_three):
    _, participants = cohort_of_three
    error = _refused(lambda: start(participants[0], T0, product_expiry=T0 - HOUR), "product_expired")
    assert isinstance(error, RuleViolation)
    assert error.message == "Product lot HM-2611-01 expired at 2026-11-25 07:00 (Asia/Shanghai): it must not be given."


def test_a_participant_who_is_not_enrolled_cannot_be_infused(nct_trial, cohort_of_three):
    with frozen(T0):
        outsider = eligible_participant(nct_trial, number="X01")
    _refused(lambda: start(outsider, T0), "not_enrolled")


def test_a_replaced_participant_is_not_infused(cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0 - HOUR):
        services.participant_mark_replaced(participant=participants[0], reason="Withdrew before dosing", by=nurse())
    _refused(lambda: start(participants[0], T0), "not_enrolled")


def test_no_infusion_in_a_cohort_paused_by_a_stopping_rule(cohort_of_three):
    cohort, participants = cohort_of_three
    Cohort.objects.filter(pk=cohort.pk).update(state=Cohort.State.PAUSED, state_before_pause=Cohort.State.FULL)
    error = _refused(lambda: start(participants[0], T0), "cohort_paused")
    assert "paused" in error.message


def test_a_sponsor_cannot_record_an_infusion(cohort_of_three):
    from core.roles import SPONSOR

    _, participants = cohort_of_three
    _refused(lambda: start(participants[0], T0, by=UserFactory(username="sponsor", role=SPONSOR)), "permission_denied")


def test_a_second_infusion_of_the_same_participant_is_refused(cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], T0)
    error = _refused(lambda: start(participants[0], T0 + DAY, product_lot="HM-2611-02"), "already_infused")
    assert "the protocol allows 1" in error.message
    assert Infusion.objects.count() == 1


def test_the_database_refuses_a_second_infusion_beyond_the_protocol_and_two_running_in_one_cohort(
    cohort_of_three, running
):
    _, participants = cohort_of_three
    names = (
        "trial",
        "cohort",
        "dose_level",
        "cells_planned",
        "product_lot",
        "product_expiry",
        "started_at",
        "drop_factor",
        "administered_by",
    )
    base = {name: getattr(running, name) for name in names}
    with pytest.raises(IntegrityError), transaction.atomic():  # sequence 2 > max_infusions 1
        Infusion.objects.create(
            **base,
            participant=participants[0],
            sequence=2,
            max_infusions=1,
            status="completed",
            ended_at=T0 + HOUR,
            cells_administered=1,
            volume_ml=1,
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # a second infusion in progress in the cohort
        Infusion.objects.create(**base, participant=participants[1], sequence=1, max_infusions=1, status="in_progress")
    with pytest.raises(IntegrityError), transaction.atomic():  # ends before it starts
        Infusion.objects.create(
            **base,
            participant=participants[1],
            sequence=1,
            max_infusions=1,
            status="completed",
            ended_at=T0 - HOUR,
            cells_administered=1,
            volume_ml=1,
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # negative volume
        Infusion.objects.create(
            **base,
            participant=participants[2],
            sequence=1,
            max_infusions=1,
            status="completed",
            ended_at=T0 + HOUR,
            cells_administered=1,
            volume_ml=-1,
        )


# --- sentinel and stagger --------------------------------------------------------------------------


def test_nobody_is_infused_before_the_sentinel(cohort_of_three):
    _, participants = cohort_of_three
    error = _refused(lambda: start(participants[1], T0), "sentinel_hold")
    assert error.message.startswith(f"Sentinel first: {participants[0].study_id} is the sentinel of cohort 1")


@pytest.mark.parametrize(
    ("when", "held"),
    [
        (T0 + HOUR + dt.timedelta(minutes=1), True),
        (T0 + 7 * DAY, True),
        (T0 + HOUR + 7 * DAY - dt.timedelta(minutes=1), True),
        (T0 + HOUR + 7 * DAY, False),
        (T0 + 8 * DAY, False),
    ],
)
def test_the_others_wait_seven_days_after_the_sentinel_infusion_ended(cohort_of_three, when, held):
    _, participants = cohort_of_three
    infuse(participants[0], T0)  # 08:00–09:00 on 2026-11-25 in Nanjing
    if held:
        error = _refused(lambda: start(participants[1], when), "sentinel_hold")
        assert error.message == (
            "Sentinel observation: the next infusion is possible from 2026-12-02 09:00 (Asia/Shanghai), 7 days "
            f"after the sentinel's infusion ({participants[0].study_id}) ended."
        )
        assert Infusion.objects.count() == 1
    else:
        assert start(participants[1], when).status == Infusion.Status.IN_PROGRESS


def test_the_others_wait_while_the_sentinel_infusion_is_running(cohort_of_three, running):
    _, participants = cohort_of_three
    error = _refused(lambda: start(participants[1], T0 + HOUR), "sentinel_hold")
    assert "still in progress" in error.message


@pytest.mark.parametrize("dlt_status", ["candidate", "confirmed"])
def test_a_dlt_candidate_of_the_sentinel_holds_the_cohort_past_the_observation_period(cohort_of_three, dlt_status):
    from safety.models import AdverseEvent

    _, participants = cohort_of_three
    infuse(participants[0], T0)
    AdverseEvent.objects.create(
        participant=participants[0],
        verbatim_term="Dyspnoea",
        ctcae_term_text="Dyspnea",
        onset_date=dt.date(2026, 11, 26),
        grade=3,
        worst_grade=3,
        relationship="possible",
        site_aware_at=T0 + DAY,
        reported_by=nurse(),
        dlt_status=dlt_status,
        dlt_decided_by=nurse() if dlt_status == "confirmed" else None,
    )
    error = _refused(lambda: start(participants[1], T0 + 30 * DAY), "sentinel_hold")
    assert "has a candidate or confirmed DLT" in error.message


def test_a_rejected_dlt_candidate_no_longer_holds_the_cohort(cohort_of_three):
    from safety.models import AdverseEvent

    _, participants = cohort_of_three
    infuse(participants[0], T0)
    AdverseEvent.objects.create(
        participant=participants[0],
        verbatim_term="Headache",
        ctcae_term_text="Headache",
        onset_date=dt.date(2026, 11, 26),
        grade=3,
        worst_grade=3,
        relationship="possible",
        site_aware_at=T0 + DAY,
        reported_by=nurse(),
        dlt_status="rejected",
        dlt_decided_by=nurse(),
    )
    assert start(participants[1], T0 + 8 * DAY).status == Infusion.Status.IN_PROGRESS


@pytest.mark.parametrize(
    ("after_previous_end", "held"),
    [(dt.timedelta(hours=23, minutes=59), True), (dt.timedelta(hours=24), False), (dt.timedelta(hours=30), False)],
)
def test_consecutive_infusions_are_at_least_the_stagger_apart(cohort_of_three, after_previous_end, held):
    _, participants = cohort_of_three
    infuse(participants[0], SCHEDULE[0])
    second = infuse(participants[1], SCHEDULE[1])
    when = second.ended_at + after_previous_end
    if held:
        error = _refused(lambda: start(participants[2], when), "stagger_hold")
        assert error.message == (
            "Stagger: the next infusion is possible from 2026-12-04 09:00 (Asia/Shanghai), 24 h after the previous "
            f"infusion ({participants[1].study_id}) ended."
        )
    else:
        assert start(participants[2], when).status == Infusion.Status.IN_PROGRESS


def test_an_infusion_cannot_be_backdated_into_a_hold(cohort_of_three):
    _, participants = cohort_of_three
    infuse(participants[0], SCHEDULE[0])
    with frozen(T0 + 10 * DAY):
        error = _refused(
            lambda: services.infusion_start(
                participant=participants[1],
                by=nurse(),
                started_at=T0 + 2 * DAY,
                product_lot="L",
                product_expiry=T0 + 20 * DAY,
            ),
            "sentinel_hold",
        )
    assert "2026-12-02 09:00" in error.message


def test_if_the_designated_sentinel_is_replaced_before_dosing_the_first_infused_is_observed_alone(cohort_of_three):
    _, participants = cohort_of_three
    with frozen(T0 - HOUR):
        services.participant_mark_replaced(participant=participants[0], reason="Withdrew before dosing", by=nurse())
    infuse(participants[1], T0)
    _refused(lambda: start(participants[2], T0 + 2 * DAY), "sentinel_hold")


# --- completing: DLT window, visits, dose, the cohort --------------------------------------------


def test_completing_the_infusion_starts_the_dlt_window_and_moves_the_participant_to_infused(cohort_of_three):
    _, participants = cohort_of_three
    infusion = infuse(participants[0], T0)
    participant = Participant.objects.get(pk=participants[0].pk)
    assert infusion.status == Infusion.Status.COMPLETED
    assert participant.status == Participant.Status.INFUSED
    # Day 0 is the infusion day at the site; the window covers days 0..28, both ends included.
    assert (participant.dlt_window_start, participant.dlt_window_end) == (dt.date(2026, 11, 25), dt.date(2026, 12, 23))
    assert participant.history.latest().history_user == nurse()


def test_day_zero_is_the_site_date_even_when_it_is_still_yesterday_in_utc(cohort_of_three):
    _, participants = cohort_of_three
    # 07:30 in Nanjing is 23:30 UTC the day before.
    infuse(participants[0], T0 - dt.timedelta(minutes=30), minutes=45, volume_ml="50.0")  # 22.2 drops/min
    participant = Participant.objects.get(pk=participants[0].pk)
    assert participant.dlt_window_start == dt.date(2026, 11, 25)


def test_duration_is_end_minus_start_minus_interruptions(running):
    with frozen(T0 + 2 * HOUR):
        services.infusion_interrupt(
            infusion=running, stopped_at=T0 + dt.timedelta(minutes=20), reason="Chills", by=nurse()
        )
        _refused(
            lambda: services.infusion_complete(
                infusion=running, ended_at=T0 + HOUR, cells_administered=60_000_000, volume_ml="100", by=nurse()
            ),
            "infusion_interrupted",
        )
        services.infusion_resume(infusion=running, restarted_at=T0 + dt.timedelta(minutes=35), by=nurse())
        services.infusion_complete(
            infusion=running,
            ended_at=T0 + dt.timedelta(minutes=95),
            cells_administered=60_000_000,
            volume_ml="100",
            by=nurse(),
        )
    infusion = selectors.infusion_list().get(pk=running.pk)
    assert infusion.duration == dt.timedelta(minutes=80)
    assert infusion.average_ml_per_hour == Decimal("75.0")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"ended_at": T0 - dt.timedelta(minutes=1)}, "end_before_start"),
        ({"volume_ml": "-0.1"}, "volume_negative"),
        ({"volume_ml": "1\x00"}, "invalid_volume"),
        ({"cells_administered": "sixty million"}, "invalid_cells"),
        ({"cells_administered": 0}, "invalid_cells"),
        ({"cells_administered": 10**30}, "invalid_cells"),
        ({"vitals_after": {"heart_rate": 900}}, "invalid_vitals"),
    ],
)
def test_a_malformed_completion_is_refused_and_the_infusion_keeps_running(running, overrides, code):
    _refused(lambda: complete(running, T0 + HOUR, **overrides), code)
    running.refresh_from_db()
    assert running.status == Infusion.Status.IN_PROGRESS and running.ended_at is None
    assert FollowUpVisit.objects.count() == 0 and ProtocolDeviation.objects.count() == 0
    participant = Participant.objects.get(pk=running.participant_id)
    assert participant.dlt_window_start is None and participant.status == Participant.Status.ENROLLED


@pytest.mark.parametrize(
    ("cells", "deviation"),
    [
        (54_000_000, False),  # −10 %: inside the tolerance
        (53_999_999, True),
        (60_000_000, False),
        (66_000_000, False),  # +10 %
        (66_000_001, True),
        (120_000_000, True),  # the next dose level's cells
    ],
)
def test_cells_given_outside_the_dose_tolerance_are_saved_and_open_a_major_deviation(running, cells, deviation):
    infusion = complete(running, T0 + HOUR, cells=cells)
    infusion.refresh_from_db()
    assert infusion.cells_administered == cells and infusion.status == Infusion.Status.COMPLETED
    found = ProtocolDeviation.objects.filter(infusion=infusion, category="dose")
    assert found.count() == int(deviation)
    if deviation:
        assert found.get().severity == "major"
        assert f"({cells:,})" in found.get().description


def test_an_infusion_stopped_early_keeps_why_starts_the_window_and_records_the_partial_dose(running):
    with frozen(T0 + HOUR):
        infusion = services.infusion_stop_early(
            infusion=running,
            ended_at=T0 + dt.timedelta(minutes=25),
            reason="Infusion reaction: rigors",
            cells_administered=20_000_000,
            volume_ml="30.0",
            vitals_after={"temperature_c": "38.6"},
            by=nurse(),
        )
    assert infusion.status == Infusion.Status.STOPPED_EARLY and infusion.stop_reason == "Infusion reaction: rigors"
    participant = Participant.objects.get(pk=running.participant_id)
    assert participant.dlt_window_start == dt.date(2026, 11, 25)
    deviation = ProtocolDeviation.objects.get(category="dose")
    assert "stopped early" in deviation.description
    assert infusion.vitals.get().temperature_c == Decimal("38.6")


def test_stopping_early_needs_a_reason(running):
    with frozen(T0 + HOUR):
        _refused(
            lambda: services.infusion_stop_early(
                infusion=running, ended_at=T0 + HOUR, reason=" ", cells_administered=0, volume_ml="0", by=nurse()
            ),
            "reason_required",
        )


def test_a_finished_infusion_cannot_be_completed_again(cohort_of_three):
    _, participants = cohort_of_three
    infusion = infuse(participants[0], T0)
    _refused(lambda: complete(infusion, T0 + 2 * HOUR), "infusion_not_in_progress")
    assert FollowUpVisit.objects.count() == 7


def test_vital_signs_before_and_after_are_kept_with_the_infusion(cohort_of_three):
    _, participants = cohort_of_three
    infusion = start(
        participants[0],
        T0,
        vitals_before={
            "systolic_bp": 128,
            "diastolic_bp": 78,
            "heart_rate": 72,
            "temperature_c": "36.6",
            "spo2_pct": 98,
            "respiratory_rate": 16,
        },
    )
    complete(infusion, T0 + HOUR, vitals_after={"systolic_bp": 131, "diastolic_bp": 80, "heart_rate": 75})
    before, after = infusion.vitals.order_by("measured_at")
    assert (before.timepoint, before.measured_at, before.spo2_pct) == ("before", T0, 98)
    assert (after.timepoint, after.measured_at, after.systolic_bp) == ("after", T0 + HOUR, 131)


def test_the_cohort_moves_to_observing_after_its_last_infusion(cohort_of_three):
    cohort, participants = cohort_of_three
    assert cohort.state == Cohort.State.FULL
    infuse(participants[0], SCHEDULE[0])
    infuse(participants[1], SCHEDULE[1])
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.FULL
    infuse(participants[2], SCHEDULE[2])
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.OBSERVING
    assert cohort.history.latest().history_change_reason == "Every participant infused: DLT windows running"


def test_a_cohort_still_open_for_enrollment_does_not_move_to_observing(nct_trial):
    cohort, participants = enrolled_cohort(nct_trial, size=1)
    infuse(participants[0], T0)
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.OPEN


def test_a_replaced_participant_does_not_count_as_needing_infusion(cohort_of_three):
    cohort, participants = cohort_of_three
    infuse(participants[0], SCHEDULE[0])
    infuse(participants[1], SCHEDULE[1])
    with frozen(SCHEDULE[2]):
        services.participant_mark_replaced(participant=participants[2], reason="Withdrew consent", by=nurse())
    cohort.refresh_from_db()
    assert (cohort.state, cohort.capacity) == (Cohort.State.OPEN, 4)  # a replacement slot opened
    with frozen(SCHEDULE[2]):
        replacement = eligible_participant(cohort.trial, number="R01")
        services.enroll_participant(participant=replacement, cohort=cohort, by=nurse())
    infuse(replacement, SCHEDULE[2] + HOUR)
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.OBSERVING


def test_a_cohort_paused_during_its_last_infusion_resumes_into_observing(cohort_of_three):
    cohort, participants = cohort_of_three
    infuse(participants[0], SCHEDULE[0])
    infuse(participants[1], SCHEDULE[1])
    last = start(participants[2], SCHEDULE[2])
    Cohort.objects.filter(pk=cohort.pk).update(state=Cohort.State.PAUSED, state_before_pause=Cohort.State.FULL)
    complete(last, SCHEDULE[2] + HOUR)  # the running infusion is still recorded
    cohort.refresh_from_db()
    assert (cohort.state, cohort.state_before_pause) == (Cohort.State.PAUSED, Cohort.State.OBSERVING)


# --- DLT windows complete (the safety review opens on it) -----------------------------------------


def test_dlt_windows_are_complete_the_day_after_the_last_participant_window_ends(cohort_of_three):
    cohort, participants = cohort_of_three
    assert not selectors.dlt_windows_complete(cohort, today=dt.date(2027, 6, 1))
    infuse_cohort(participants)
    last_end = Participant.objects.get(pk=participants[2].pk).dlt_window_end
    assert last_end == dt.date(2026, 12, 4) + dt.timedelta(days=28)
    assert not selectors.dlt_windows_complete(cohort, today=last_end)
    assert selectors.dlt_windows_complete(cohort, today=last_end + dt.timedelta(days=1))
    with frozen(dt.datetime.combine(last_end, dt.time(23, 59), tzinfo=T0.tzinfo)):
        assert not selectors.dlt_windows_complete(cohort)
    with frozen(dt.datetime.combine(last_end + dt.timedelta(days=1), dt.time(0, 1), tzinfo=T0.tzinfo)):
        assert selectors.dlt_windows_complete(cohort)


def test_dlt_windows_are_not_complete_while_an_evaluable_participant_is_not_infused(cohort_of_three):
    cohort, participants = cohort_of_three
    infuse(participants[0], SCHEDULE[0])
    infuse(participants[1], SCHEDULE[1])
    assert not selectors.dlt_windows_complete(cohort, today=dt.date(2027, 6, 1))
    with frozen(SCHEDULE[2]):
        services.participant_mark_replaced(participant=participants[2], reason="Withdrew consent", by=nurse())
    cohort.refresh_from_db()
    assert not selectors.dlt_windows_complete(cohort, today=dt.date(2027, 6, 1))  # the replacement slot is empty
