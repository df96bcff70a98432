"""The average drip rate of a finished infusion (issue 9, item 5): volume × drop factor ÷ running minutes.

Checked against the protocol's 20–25 drops/min like a bedside reading: outside it is saved, flagged and
opens a deviation (major when faster, minor when slower). Above 10 × the maximum (250 drops/min) it is
not a drip but an entry error, refused unless the nurse confirms it.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from cohorts import selectors, services
from cohorts.models import (
    IMPLAUSIBLE_RATE_FACTOR,
    DripRateReading,
    Infusion,
    Participant,
    ProtocolDeviation,
    average_drip_rate,
)
from core.errors import DomainError
from tests.cohorts.test_infusions_support import (
    HOUR,
    T0,
    complete,
    enrolled_cohort,
    frozen,
    nurse,
    start,
)

pytestmark = pytest.mark.django_db

MINUTE = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def participants(nct_trial):
    return enrolled_cohort(nct_trial)[1]


@pytest.fixture
def running(participants):
    """The sentinel's infusion, started at T0 with the trial's 20 drops/mL set."""
    return start(participants[0], T0)


def _refused(call, code: str) -> DomainError:
    with pytest.raises(DomainError) as refused:
        call()
    assert refused.value.code == code, refused.value.message
    return refused.value


def _rate_deviations(infusion: Infusion):
    return ProtocolDeviation.objects.filter(infusion=infusion, category="infusion_rate", drip_rate_reading=None)


def _nothing_finished(infusion: Infusion) -> None:
    infusion.refresh_from_db()
    assert infusion.status == Infusion.Status.IN_PROGRESS and infusion.average_drops_per_minute is None
    assert ProtocolDeviation.objects.count() == 0
    assert Participant.objects.get(pk=infusion.participant_id).dlt_window_start is None


# --- the arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume", "drop_factor", "running", "expected"),
    [
        ("100", 20, 80 * MINUTE, "25.0"),
        ("100", 20, 79 * MINUTE, "25.3"),  # 25.316…
        ("100", 20, 100 * MINUTE, "20.0"),
        ("100", 20, 101 * MINUTE, "19.8"),  # 19.801…
        ("100", 20, 3 * MINUTE, "666.7"),  # 666.666…, half up
        ("100", 60, 4 * HOUR, "25.0"),  # a micro-drip set: the drop factor counts
        ("100", 15, HOUR, "25.0"),
        ("0", 20, HOUR, None),  # nothing given: no average
        ("100", 20, dt.timedelta(0), None),  # no running time: no average (the service refuses it)
    ],
)
def test_the_average_rate_is_volume_times_drop_factor_over_running_minutes(volume, drop_factor, running, expected):
    rate = average_drip_rate(volume_ml=Decimal(volume), drop_factor=drop_factor, running=running)
    assert rate == (None if expected is None else Decimal(expected))


# --- in range, and just beyond each end ------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "average", "flagged", "severity"),
    [
        (79, "25.3", True, "major"),  # faster than 25: the safety direction for a cell product
        (80, "25.0", False, None),  # exactly the maximum: in range
        (90, "22.2", False, None),
        (100, "20.0", False, None),  # exactly the minimum: in range
        (101, "19.8", True, "minor"),
    ],
)
def test_100_ml_completed_is_checked_against_20_to_25_drops_per_minute(running, minutes, average, flagged, severity):
    infusion = complete(running, T0 + minutes * MINUTE, volume_ml="100")
    infusion.refresh_from_db()
    assert infusion.average_drops_per_minute == Decimal(average)
    assert infusion.average_rate_out_of_range is flagged
    assert (infusion.average_rate_min, infusion.average_rate_max) == (Decimal(20), Decimal(25))
    assert infusion.implausible_rate_confirmed is False
    deviations = _rate_deviations(infusion)
    assert deviations.count() == int(flagged)
    if flagged:
        deviation = deviations.get()
        assert (deviation.severity, deviation.source, deviation.participant_id) == (
            severity,
            "system",
            infusion.participant_id,
        )
        assert deviation.detected_by is None and deviation.occurred_on == dt.date(2026, 11, 25)
        direction = "faster than" if severity == "major" else "slower than"
        assert deviation.description.startswith(f"Average rate {average} drops/min (100 mL in {minutes} min running ")
        assert (
            f"with a 20 drops/mL set; {infusion.average_ml_per_hour} mL/h) is {direction} the protocol's "
            "20–25 drops/min." in deviation.description
        )
        assert "outside the protocol" in infusion.history.latest().history_change_reason


def test_the_time_of_an_interruption_is_not_running_time(running):
    with frozen(T0 + 50 * MINUTE):
        services.infusion_interrupt(infusion=running, stopped_at=T0 + 30 * MINUTE, reason="Chills", by=nurse())
        services.infusion_resume(infusion=running, restarted_at=T0 + 50 * MINUTE, by=nurse())
    # 99 min from start to end, 20 of them interrupted: 79 min ran, so 25.3 drops/min (99 min would be 20.2).
    infusion = complete(running, T0 + 99 * MINUTE, volume_ml="100")
    infusion.refresh_from_db()
    assert (infusion.average_drops_per_minute, infusion.average_rate_out_of_range) == (Decimal("25.3"), True)
    assert "(100 mL in 79 min running time" in _rate_deviations(infusion).get().description


def test_an_interruption_still_open_when_stopped_early_lasts_until_the_end(running):
    with frozen(T0 + HOUR):
        services.infusion_interrupt(infusion=running, stopped_at=T0 + 40 * MINUTE, reason="Rigors", by=nurse())
        infusion = services.infusion_stop_early(
            infusion=running,
            ended_at=T0 + HOUR,
            reason="Infusion reaction",
            cells_administered=24_000_000,
            volume_ml="40",
            by=nurse(),
        )
    infusion.refresh_from_db()
    # 40 mL in the 40 min before the interruption: 20.0 drops/min, in range (60 min would be 13.3).
    assert (infusion.average_drops_per_minute, infusion.average_rate_out_of_range) == (Decimal("20.0"), False)
    assert not _rate_deviations(infusion).exists()


def test_an_infusion_stopped_early_too_slowly_is_flagged_with_a_minor_deviation(running):
    with frozen(T0 + HOUR):
        infusion = services.infusion_stop_early(
            infusion=running,
            ended_at=T0 + 25 * MINUTE,
            reason="Rigors",
            cells_administered=12_000_000,
            volume_ml="20",
            by=nurse(),
        )
    infusion.refresh_from_db()
    assert (infusion.status, infusion.average_drops_per_minute) == ("stopped_early", Decimal("16.0"))
    assert infusion.average_rate_out_of_range is True
    assert _rate_deviations(infusion).get().severity == "minor"
    assert ProtocolDeviation.objects.filter(infusion=infusion, category="dose").count() == 1  # the partial dose


def test_an_infusion_stopped_before_anything_ran_has_no_average_and_no_rate_deviation(running):
    with frozen(T0 + HOUR):
        infusion = services.infusion_stop_early(
            infusion=running,
            ended_at=T0,
            reason="Anaphylaxis at the start",
            cells_administered=0,
            volume_ml="0",
            by=nurse(),
        )
    infusion.refresh_from_db()
    assert infusion.status == "stopped_early" and infusion.average_drops_per_minute is None
    assert (infusion.average_rate_min, infusion.average_rate_out_of_range) == (None, False)
    assert not _rate_deviations(infusion).exists()
    # She was exposed to nothing, but the dose check still records it (0 cells given) and her window starts.
    assert ProtocolDeviation.objects.filter(infusion=infusion, category="dose").count() == 1
    assert Participant.objects.get(pk=infusion.participant_id).dlt_window_start == dt.date(2026, 11, 25)


def test_a_volume_given_in_no_running_time_is_refused_and_cannot_be_confirmed(running):
    with frozen(T0 + HOUR):
        for confirm in (False, True):
            error = _refused(
                lambda c=confirm: services.infusion_stop_early(
                    infusion=running,
                    ended_at=T0,
                    reason="Rigors",
                    cells_administered=1,
                    volume_ml="5",
                    confirm_implausible_rate=c,
                    by=nurse(),
                ),
                "no_running_time",
            )
    assert "5 mL cannot be given in no running time" in error.message and "the interruptions" in error.message
    _nothing_finished(running)


@pytest.mark.parametrize(
    ("elapsed", "average"),
    [
        (dt.timedelta(microseconds=1), None),  # 1.2 × 10¹¹ drops/min: beyond any infusion (and the column)
        (dt.timedelta(microseconds=2), "60000000000.0"),  # 6 × 10¹⁰: absurd, but stored once confirmed
    ],
)
def test_a_running_time_too_short_to_mean_anything_is_refused_as_none(running, elapsed, average):
    def finish():
        return complete(running, T0 + elapsed, volume_ml="100", confirm_implausible_rate=True)

    if average is None:
        _refused(finish, "no_running_time")
        _nothing_finished(running)
    else:
        assert Infusion.objects.get(pk=finish().pk).average_drops_per_minute == Decimal(average)


def test_a_completed_infusion_with_no_volume_is_refused(running):
    error = _refused(lambda: complete(running, T0 + HOUR, volume_ml="0"), "volume_not_given")
    assert "stopped early" in error.message
    _nothing_finished(running)


# --- implausible for a drip: above 10 × the maximum ------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "confirm", "average", "confirmed"),
    [
        (480, False, "250.0", False),  # exactly 10 × 25: fast, but a drip; no confirmation needed
        (480, True, "250.0", False),  # nothing to confirm, so no confirmation is recorded
        (479, True, "250.5", True),  # just above: saved only because the nurse confirmed it
        (180, True, "666.7", True),  # 100 mL in 3 min
    ],
)
def test_a_fast_average_is_saved_with_a_major_deviation_and_recorded_as_confirmed_only_when_implausible(
    running, seconds, confirm, average, confirmed
):
    infusion = complete(running, T0 + seconds * SECOND, volume_ml="100", confirm_implausible_rate=confirm)
    infusion.refresh_from_db()
    assert (infusion.average_drops_per_minute, infusion.average_rate_out_of_range) == (Decimal(average), True)
    assert infusion.implausible_rate_confirmed is confirmed
    deviation = _rate_deviations(infusion).get()
    assert deviation.severity == "major"
    assert ("confirmed it as entered" in deviation.description) is confirmed
    reason = infusion.history.latest().history_change_reason
    assert ("confirmed as entered although implausible" in reason) is confirmed
    assert infusion.history.latest().history_user == nurse()


@pytest.mark.parametrize("seconds", [479, 180])
def test_an_implausible_average_is_refused_as_an_entry_error_without_the_nurses_confirmation(running, seconds):
    _refused(lambda: complete(running, T0 + seconds * SECOND, volume_ml="100"), "implausible_average_rate")
    _nothing_finished(running)


def test_the_refusal_names_the_rate_the_volume_the_running_time_the_drop_factor_and_how_to_confirm(running):
    error = _refused(lambda: complete(running, T0 + 3 * MINUTE, volume_ml="100"), "implausible_average_rate")
    assert error.status_code == 400
    for part in (
        "666.7 drops/min = 100 mL × 20 drops/mL ÷ 3 min of running time",
        "less 0 min interrupted",
        "10 × the protocol's maximum of 25 drops/min",
        "confirm_implausible_rate",
    ):
        assert part in error.message, part
    assert "confirm_implausible_rate" in error.fields


def test_the_implausibility_factor_is_ten():
    assert IMPLAUSIBLE_RATE_FACTOR == 10


def test_the_confirmation_must_be_true_or_false(running):
    _refused(lambda: complete(running, T0 + HOUR, confirm_implausible_rate="yes"), "invalid")
    _nothing_finished(running)


def test_an_out_of_range_reading_and_an_out_of_range_average_each_open_their_own_deviation(running):
    with frozen(T0 + 10 * MINUTE):
        reading = services.drip_rate_record(
            infusion=running, observed_at=T0 + 10 * MINUTE, drops_per_minute="30", by=nurse()
        )
    infusion = complete(running, T0 + 79 * MINUTE, volume_ml="100")
    by_reading = ProtocolDeviation.objects.get(drip_rate_reading=reading)
    average = _rate_deviations(infusion).get()
    assert by_reading.pk != average.pk and {by_reading.severity, average.severity} == {"major"}
    assert ProtocolDeviation.objects.filter(infusion=infusion, category="infusion_rate").count() == 2


def test_the_timeline_shows_the_average_and_warns_when_it_is_off_the_protocol(running):
    complete(running, T0 + 101 * MINUTE, volume_ml="100")
    entry = next(e for e in selectors.participant_timeline(running.participant) if e.kind == "infusion")
    assert "average 19.8 drops/min (outside the protocol)" in entry.label and entry.tone == "warn"


# --- the database holds it too ---------------------------------------------------------------------


def test_the_database_opens_one_average_rate_deviation_per_infusion(running):
    with frozen(T0 + 10 * MINUTE):
        reading = services.drip_rate_record(
            infusion=running, observed_at=T0 + 10 * MINUTE, drops_per_minute="22", by=nurse()
        )
    infusion = complete(running, T0 + 79 * MINUTE, volume_ml="100")
    first = _rate_deviations(infusion).get()
    copy = {
        name: getattr(first, name)
        for name in (
            "trial_id",
            "participant_id",
            "category",
            "severity",
            "description",
            "source",
            "occurred_on",
            "detected_at",
        )
    }
    with pytest.raises(IntegrityError), transaction.atomic():  # deviation_one_average_rate_per_infusion
        ProtocolDeviation.objects.create(**copy, infusion=infusion)
    # The system's reading deviations are one per reading, not caught by it; staff may record their own.
    ProtocolDeviation.objects.create(**copy, infusion=infusion, drip_rate_reading=reading)
    ProtocolDeviation.objects.create(**(copy | {"source": "staff"}), detected_by=nurse(), infusion=infusion)
    # deviation_reading_is_rate still holds: a deviation linked to a reading is a rate deviation of an infusion.
    reading_two = DripRateReading.objects.create(
        infusion=infusion,
        observed_at=T0 + 20 * MINUTE,
        drops_per_minute=22,
        rate_min=20,
        rate_max=25,
        recorded_by=nurse(),
    )
    for wrong in ({"category": "dose", "infusion": infusion}, {"infusion": None}):
        with pytest.raises(IntegrityError), transaction.atomic():
            ProtocolDeviation.objects.create(**(copy | {"infusion": infusion} | wrong), drip_rate_reading=reading_two)


FINISHED = {
    "average_drops_per_minute": Decimal("22.2"),
    "average_rate_min": Decimal(20),
    "average_rate_max": Decimal(25),
    "average_rate_out_of_range": False,
    "implausible_rate_confirmed": False,
}


@pytest.mark.parametrize(
    ("changes", "allowed"),
    [
        ({}, True),
        ({"average_drops_per_minute": Decimal("25.3")}, False),  # outside, not flagged
        ({"average_drops_per_minute": Decimal("25.3"), "average_rate_out_of_range": True}, True),
        ({"average_drops_per_minute": Decimal("19.9"), "average_rate_out_of_range": True}, True),
        ({"average_drops_per_minute": Decimal("20.0"), "average_rate_out_of_range": True}, False),  # in, flagged
        ({"average_drops_per_minute": Decimal("25.0"), "average_rate_out_of_range": True}, False),
        ({"average_rate_min": None, "average_rate_max": None}, False),  # an average without its range
        ({"average_rate_max": None}, False),
        ({"average_rate_min": Decimal(26), "average_drops_per_minute": Decimal(26)}, False),  # range unordered
        ({"average_drops_per_minute": Decimal(0), "average_rate_out_of_range": True}, False),  # not positive
        ({"average_drops_per_minute": None, "average_rate_min": None, "average_rate_max": None}, True),
        ({"average_drops_per_minute": None}, False),  # a range without an average
        ({"average_drops_per_minute": None, "average_rate_min": None, "average_rate_max": None,
          "average_rate_out_of_range": True}, False),  # a flag without an average
        ({"average_drops_per_minute": Decimal("250.0"), "average_rate_out_of_range": True}, True),  # 10 × max
        ({"average_drops_per_minute": Decimal("250.1"), "average_rate_out_of_range": True}, False),  # unconfirmed
        ({"average_drops_per_minute": Decimal("250.1"), "average_rate_out_of_range": True,
          "implausible_rate_confirmed": True}, True),
        ({"average_drops_per_minute": Decimal("250.0"), "average_rate_out_of_range": True,
          "implausible_rate_confirmed": True}, False),  # nothing implausible to confirm
        ({"average_drops_per_minute": None, "average_rate_min": None, "average_rate_max": None,
          "implausible_rate_confirmed": True}, False),
    ],
)  # fmt: skip
def test_the_database_keeps_the_average_its_range_its_flag_and_its_confirmation_consistent(running, changes, allowed):
    infusion = complete(running, T0 + 90 * MINUTE, volume_ml="100")
    rows = Infusion.objects.filter(pk=infusion.pk)
    if allowed:
        rows.update(**(FINISHED | changes))
    else:
        with pytest.raises(IntegrityError), transaction.atomic():
            rows.update(**(FINISHED | changes))


def test_the_database_refuses_an_average_on_an_infusion_still_running(running):
    with pytest.raises(IntegrityError), transaction.atomic():
        Infusion.objects.filter(pk=running.pk).update(**FINISHED)
