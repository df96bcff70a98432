"""The plots' geometry and the exports' value rules are pure functions: tables of cases, no database."""

from datetime import UTC, date, datetime

import pytest

from dashboard import svg
from dashboard.selectors import AeMark, ClockRow, GradeRow, Lane, Signature, VisitMark
from exports import sdtm


@pytest.mark.parametrize(
    ("day", "x"),
    [(date(2026, 1, 1), 100.0), (date(2026, 1, 2), 110.0), (date(2026, 1, 10), 190.0)],
)
def test_a_day_maps_to_its_left_edge_with_the_last_day_included(day, x):
    scale = svg.date_scale(date(2026, 1, 1), date(2026, 1, 10), 100, 200)
    assert scale(day) == pytest.approx(x)
    assert svg.day_width(date(2026, 1, 1), date(2026, 1, 10), 100, 200) == pytest.approx(10)


@pytest.mark.parametrize(
    ("start", "end", "first", "count"),
    [
        (date(2026, 1, 1), date(2026, 1, 5), date(2026, 1, 1), 5),  # daily
        (date(2026, 1, 1), date(2026, 3, 1), date(2026, 1, 5), 8),  # weekly, from a Monday
        (date(2026, 1, 15), date(2026, 9, 30), date(2026, 2, 1), 8),  # the first of each month
        (date(2026, 1, 15), date(2026, 12, 31), date(2026, 4, 1), 3),  # the first of each quarter
    ],
)
def test_axis_ticks_are_round_dates_inside_the_range(start, end, first, count):
    ticks = svg.date_ticks(start, end, most=10)
    assert ticks[0] == first and len(ticks) == count and all(start <= t <= end for t in ticks)


def _lane(**kw):
    day = date(2026, 11, 25)
    base = {"study_id": "9137-001", "cohort": 1, "dose_level": 1, "enrolled_on": day, "infused_on": day,
            "window_start": day, "window_end": date(2026, 12, 23)}  # fmt: skip
    return Lane(**(base | kw))


def test_the_swimmer_draws_a_lane_per_participant_with_a_square_for_a_confirmed_dlt():
    lanes = [
        _lane(
            events=(
                AeMark(date(2026, 12, 1), 3, "Febrile neutropenia", False, "confirmed"),
                AeMark(date(2026, 12, 2), 1, "Headache", False, "not_candidate"),
            )
        ),
        _lane(
            study_id="9137-002",
            visits=(VisitMark(date(2026, 11, 26), "D1", "missed"), VisitMark(date(2027, 11, 26), "M12", "scheduled")),
        ),
    ]
    plot = svg.swimmer(lanes, today=date(2026, 12, 10))
    labels = [s.text for s in plot.shapes if s.tag == "text" and "C1" in s.text]
    assert labels == ["9137-001  C1 · DL1", "9137-002  C1 · DL1"]
    classes = [dict(s.attrs).get("class", "") for s in plot.shapes]
    assert "ae grade-3 dlt" in classes and "ae grade-1" in classes and "visit-missed" in classes
    assert not any("M12" in s.title for s in plot.shapes)  # a visit a year ahead stays in the table
    assert sum(1 for c in classes if c == "dlt-window") == 2


def test_stacked_bars_are_as_long_as_their_counts():
    plot = svg.grade_bars([GradeRow(1, "Low", {1: 2, 2: 0, 3: 1, 4: 0, 5: 0}), GradeRow(2, "Medium", dict.fromkeys(
        range(1, 6), 0))], width=600)  # fmt: skip
    bars = [dict(s.attrs) for s in plot.shapes if s.tag == "rect" and s.title]
    assert [b["class"] for b in bars] == ["grade-1", "grade-3"]
    assert float(bars[0]["width"]) == pytest.approx(2 * float(bars[1]["width"]))


def test_clock_bars_and_the_review_timeline_carry_their_numbers_as_tooltips():
    clocks = svg.clock_bars([ClockRow("sponsor_24h", "Sponsor notification (24 h)", 1, 1, 0, 0)])
    assert {s.title for s in clocks.shapes if s.title} == {"Sponsor notification (24 h): 1 on time",
                                                           "Sponsor notification (24 h): 1 late"}  # fmt: skip
    from zoneinfo import ZoneInfo

    from dashboard.selectors import ReviewStep

    moment = datetime(2027, 1, 4, 1, tzinfo=UTC)
    step = ReviewStep(1, 1, 1, "scheduled", "effective", "Decision effective", moment, "2027-01-04", "1NNN",
                      "escalate", "escalate", "Escalate to the next dose level", "", moment,
                      (Signature("Member Number0", "approve", moment),), 2, 2)  # fmt: skip
    plot = svg.review_timeline([step], zone=ZoneInfo("Asia/Shanghai"), today=date(2027, 1, 10))
    assert "Member Number0: approve at 2027-01-04 09:00" in {s.title for s in plot.shapes}
    assert any("→ cohort 2 (DL2)" in s.text for s in plot.shapes)


@pytest.mark.parametrize(
    ("day", "reference", "expected"),
    [(date(2026, 1, 1), date(2026, 1, 1), 1), (date(2026, 1, 2), date(2026, 1, 1), 2),
     (date(2025, 12, 31), date(2026, 1, 1), -1), (None, date(2026, 1, 1), ""), (date(2026, 1, 1), None, "")],
)  # fmt: skip
def test_sdtm_study_days_have_no_day_zero(day, reference, expected):
    assert sdtm.study_day(day, reference) == expected


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [(date(1960, 3, 15), date(2026, 3, 14), 65), (date(1960, 3, 15), date(2026, 3, 15), 66),
     (date(1960, 2, 29), date(2026, 2, 28), 65)],
)  # fmt: skip
def test_age_is_completed_years(born, on, age):
    assert sdtm.age_years(born, on) == age


def test_arm_codes_and_descriptions_are_plain_ascii():
    assert sdtm.arm(1, "Low", 60_000_000) == ("DL1", "Dose level 1: Low (6.0E7 cells)")
    assert sdtm.arm(None, None, None) == ("", "")
