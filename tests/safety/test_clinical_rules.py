"""The clinical rules of issue 9 as pure functions, each as a table with both sides of every boundary.

Sources: ICH E2A (II.B seriousness, III.A reporting in calendar days), CTCAE v5.0 (grades 1 to 5),
Le Tourneau, Lee & Siu 2009 and the R package ``escalation`` (3+3 and its MTD), ``BOIN::select.mtd``.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from safety import dlt, rules
from safety.selectors import full_dose_given

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


# --- CTCAE grades: the pure DLT function refuses what is not a grade ---------------------------------------------


def _candidacy(grade, min_grade=3):
    return dlt.dlt_candidacy(
        grade=grade,
        relationship="possible",
        onset=dt.date(2026, 1, 5),
        infusion_reaction=False,
        window_start=dt.date(2026, 1, 1),
        window_end=dt.date(2026, 1, 29),
        min_grade=min_grade,
        min_relationship="possible",
    )


@pytest.mark.parametrize("grade", [0, 6, -1, True, 3.0, "3", None])
def test_the_dlt_rule_refuses_a_grade_that_ctcae_does_not_have(grade):
    with pytest.raises(ValueError, match="grades are 1 to 5"):
        _candidacy(grade)


@pytest.mark.parametrize(("grade", "candidate"), [(1, False), (2, False), (3, True), (5, True)])
def test_the_dlt_rule_judges_every_ctcae_grade_from_1_to_5(grade, candidate):
    assert _candidacy(grade).candidate is candidate


def test_the_dlt_rule_refuses_a_protocol_threshold_outside_the_grades():
    with pytest.raises(ValueError):
        _candidacy(3, min_grade=6)


# --- ICH E2A III.A: calendar days, day 0 = the site's day of first knowledge -------------------------------------


def _clocks(known_at, *, fatal=True, relationship="possible", expected=False, zone="Asia/Shanghai"):
    return {
        c.kind: c.due_at
        for c in dlt.reporting_clocks(
            serious=True,
            relationship=relationship,
            expected=expected,
            fatal_or_life_threatening=fatal,
            known_at=known_at,
            site_time_zone=zone,
        )
    }


def _end_of(day: dt.date, zone=SHANGHAI) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=zone)


@pytest.mark.parametrize(
    "aware",
    [dt.datetime(2026, 11, 20, 0, 1, tzinfo=SHANGHAI), dt.datetime(2026, 11, 20, 23, 59, tzinfo=SHANGHAI)],
    ids=["00:01", "23:59"],
)
def test_a_fatal_susar_known_at_any_time_of_day_0_is_due_at_the_end_of_calendar_day_7(aware):
    clocks = _clocks(aware)
    assert clocks["susar_7d"] == _end_of(dt.date(2026, 11, 27))
    assert clocks["susar_followup"] == _end_of(dt.date(2026, 12, 5))  # 8 more calendar days
    assert clocks["sponsor_24h"] == aware + dt.timedelta(hours=24)  # the sponsor notice stays rolling


def test_one_minute_after_midnight_is_a_new_day_0():
    before = _clocks(dt.datetime(2026, 11, 20, 23, 59, 59, tzinfo=SHANGHAI))
    after = _clocks(dt.datetime(2026, 11, 21, 0, 0, tzinfo=SHANGHAI))
    assert after["susar_7d"] - before["susar_7d"] == dt.timedelta(days=1)


def test_day_0_is_the_site_calendar_day_not_the_utc_day():
    # 2026-11-20 17:30 UTC is already 2026-11-21 01:30 in Shanghai: day 0 is the 21st.
    aware = dt.datetime(2026, 11, 20, 17, 30, tzinfo=dt.UTC)
    assert _clocks(aware)["susar_7d"] == _end_of(dt.date(2026, 11, 28))


def test_a_non_fatal_susar_is_due_at_the_end_of_calendar_day_15_and_has_no_separate_follow_up_clock():
    clocks = _clocks(dt.datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI), fatal=False)
    assert set(clocks) == {"sponsor_24h", "susar_15d"}
    assert clocks["susar_15d"] == _end_of(dt.date(2026, 12, 5))


def test_a_dst_change_in_the_site_zone_does_not_move_the_calendar_day():
    # Berlin leaves summer time on 2026-10-25: 7 days from the 20th still end at midnight local time.
    clocks = _clocks(dt.datetime(2026, 10, 20, 12, 0, tzinfo=BERLIN), zone="Europe/Berlin")
    assert clocks["susar_7d"] == _end_of(dt.date(2026, 10, 27), BERLIN)
    assert clocks["susar_7d"].astimezone(BERLIN).utcoffset() == dt.timedelta(hours=1)  # CET, after the change


@pytest.mark.parametrize(
    ("relationship", "expected", "kinds"),
    [
        ("unlikely", False, {"sponsor_24h"}),  # not related enough: not a SUSAR
        ("possible", False, {"sponsor_24h", "susar_7d", "susar_followup"}),
        ("possible", True, {"sponsor_24h"}),  # expected per the brochure: not a SUSAR
    ],
)
def test_only_a_related_unexpected_serious_event_is_a_susar(relationship, expected, kinds):
    assert (
        set(_clocks(dt.datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI), relationship=relationship, expected=expected))
        == kinds
    )


# --- 3+3: the protocol's variant, and no MTD on 3 patients -------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "r_default", "confirm_on_six"),
    [
        # (recommended dose, continue) in R escalation's default, then in the confirm-on-six variant
        ("1NNN", (2, True), (2, True)),
        ("1NTN", (1, True), (1, True)),
        ("1NTT", (None, False), (None, False)),
        ("1NNN 2NTT", (1, False), (1, True)),  # R stops on 0/3 at dose 1; the variant treats 6 there first
        ("1NNN 2NTT 1NNN", (1, False), (1, False)),
        ("1NNN 2NTT 1NTN", (1, False), (1, False)),  # 1/6 at dose 1, dose 2 ruled out
        ("1NNN 2NTT 1NTT", (None, False), (None, False)),
        ("1NNN 2NNN 3NNN", (3, False), (3, True)),  # top dose, 0/3: R declares, the variant expands to 6
        ("1NNN 2NNN 3NNN 3NNN", (3, False), (3, False)),
        ("1NNN 2NNN 3NTN", (3, True), (3, True)),
        ("1NNN 2NNN 3NTN 3NNN", (3, False), (3, False)),
        ("1NNN 2NNN 3NTN 3NTN", (2, False), (2, True)),  # 2/6 at the top: the variant confirms dose 2 on 6
        ("1NNN 2NNN 3NTT 2NNN", (2, False), (2, False)),
    ],
)
def test_the_3_plus_3_variants_side_by_side(outcomes, r_default, confirm_on_six):
    default = rules.three_plus_three(outcomes, num_doses=3, strict=False)
    variant = rules.three_plus_three(outcomes, num_doses=3, strict=False, confirm_on_six=True)
    assert (default.recommended_dose, default.continue_) == r_default
    assert (variant.recommended_dose, variant.continue_) == confirm_on_six


def test_the_variant_says_why_it_expands_the_top_dose():
    advice = rules.three_plus_three("1NNN 2NNN 3NNN", num_doses=3, confirm_on_six=True)
    assert "expand dose 3 to 6 patients" in advice.reason


def test_the_r_default_is_unchanged_by_the_variant_keyword():
    for outcomes in ("1NNN", "1NNN 2NTT", "1NNN 2NNN 3NNN", "1NTN 1NNN 2NTT"):
        assert rules.three_plus_three(outcomes, num_doses=3) == rules.three_plus_three(
            outcomes, num_doses=3, confirm_on_six=False
        )


# --- MTD selection: always a treated dose -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "status", "dose", "cleared"),
    [
        ("", "none", None, None),
        ("1NNN", "not_reached", None, 1),  # escalation would go to 2: dose 2 is not the MTD
        ("1NTT", "none", None, None),  # dose 1 is too toxic
        ("1NTN 1NTN", "none", None, None),  # 2 of 6 at dose 1
        ("1NNN 2NTT", "not_determined", None, None),  # dose 1 only on 3 patients
        ("1NNN 2NTT 1NNN", "mtd", 1, None),
        ("1NNN 2NTT 1NTN", "mtd", 1, None),  # 1 of 6: at the boundary, still the MTD
        ("1NNN 2NTN 2NNN 3NTT", "mtd", 2, None),
        ("1NNN 2NTN 2NTN 1NNN", "mtd", 1, None),  # 2 of 6 at dose 2: just past the boundary
        ("1NNN 2NNN 3NNN", "not_reached", None, 3),  # the top dose on 3: not an MTD
        ("1NNN 2NNN 3NNN 3NNN", "not_reached", None, 3),
        ("1NNN 2NNN 3NTN 3NNN", "not_reached", None, 3),
        ("1NNN 2NNN 3NTN", "not_reached", None, 2),  # 1 of 3 at the top has not cleared it yet
    ],
)
def test_the_3_plus_3_mtd_is_the_highest_dose_with_6_treated_and_at_most_1_dlt_below_a_toxic_dose(
    outcomes, status, dose, cleared
):
    selection = rules.three_plus_three_select_mtd(outcomes, num_doses=3)
    assert (selection.status, selection.dose, selection.highest_cleared) == (status, dose, cleared)


def test_the_mtd_statement_says_not_reached_rather_than_naming_the_top_dose():
    assert rules.three_plus_three_select_mtd("1NNN 2NNN 3NNN 3NNN", num_doses=3).statement == (
        "MTD not reached; highest dose cleared: 3"
    )
    assert rules.three_plus_three_select_mtd("1NNN 2NTT 1NNN", num_doses=3).statement == "MTD: dose 1"


@pytest.mark.parametrize(
    ("outcomes", "dose"),
    # 3 of 6 at dose 2 (estimate 0.50) is nearer the target 0.30 than 0 of 3 at dose 1 (0.016)
    [("1NNN 2NNN 3NTT", 2), ("1NNN 2NTN 2NTT", 2), ("1NTT 1TTT", None), ("1NNN 2NNN 3NNN", 3)],
)
def test_the_boin_mtd_is_boin_select_mtd_among_treated_doses(outcomes, dose):
    selection = rules.boin_mtd_selection(outcomes, num_doses=3, target=0.3)
    assert selection.dose == rules.boin_select_mtd(outcomes, num_doses=3, target=0.3) == dose
    assert selection.status == ("mtd" if dose else "none")


# --- evaluability for dose escalation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "infused", "full_dose", "has_dlt", "window_over", "replaced", "status"),
    [
        ("full_dose_or_dlt", True, True, False, True, False, "evaluable"),
        ("full_dose_or_dlt", True, True, False, False, False, "pending"),
        ("full_dose_or_dlt", True, False, False, True, False, "not_evaluable"),  # stopped early, no DLT
        ("full_dose_or_dlt", True, False, False, False, False, "not_evaluable"),  # known at once: replace her
        ("full_dose_or_dlt", True, False, True, False, False, "evaluable"),  # a DLT always counts
        ("any_infusion", True, False, False, True, False, "evaluable"),  # the older, looser rule
        ("any_infusion", True, False, False, False, False, "pending"),
        ("full_dose_or_dlt", False, False, False, False, False, "not_infused"),
        ("full_dose_or_dlt", True, False, False, True, True, "replaced"),
    ],
)
def test_evaluability_follows_the_protocols_rule(rule, infused, full_dose, has_dlt, window_over, replaced, status):
    verdict = dlt.evaluability(
        rule=rule, infused=infused, full_dose=full_dose, has_dlt=has_dlt, window_over=window_over, replaced=replaced
    )
    assert verdict.status == status
    assert verdict.needs_replacement is (status == "not_evaluable")


def test_an_unknown_evaluability_rule_is_refused():
    with pytest.raises(ValueError, match="Unknown evaluability rule"):
        dlt.evaluability(rule="all", infused=True, full_dose=True, has_dlt=False, window_over=True, replaced=False)


@pytest.mark.parametrize(
    ("cells", "full"),
    [(60_000_000, True), (54_000_000, True), (53_999_999, False), (0, False), (70_000_000, True)],
)
def test_the_full_dose_is_the_dose_level_less_its_tolerance(cells, full):
    assert full_dose_given(cells_given=cells, dose_cells=60_000_000, tolerance_pct=Decimal("10")) is full
