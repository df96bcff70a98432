import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import PROTOCOL_FILE
from trial.models import DoseLevel, EligibilityCriterion, Site, Trial, VisitDefinition

pytestmark = pytest.mark.django_db

CLINICAL_MODELS = (Trial, Site, DoseLevel, EligibilityCriterion, VisitDefinition)


def _history_rows() -> int:
    return sum(model.history.count() for model in CLINICAL_MODELS)


def _run(*args) -> tuple[dict, str]:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("load_protocol", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_load_protocol_creates_the_trial_exactly_as_registered():
    report, _ = _run()
    assert report["created"] is True
    trial = Trial.objects.get(registry_id="NCT06949137")
    assert trial.planned_enrollment == 18
    assert trial.phase == Trial.Phase.PHASE1
    assert (trial.eligible_sex, trial.min_age_years, trial.max_age_years) == ("female", 45, 85)
    assert (trial.infusion_rate_min, trial.infusion_rate_max) == (Decimal("20"), Decimal("25"))
    assert (trial.cohort_size, trial.max_per_dose_level, trial.dlt_window_days) == (3, 6, 28)
    assert trial.escalation_design == Trial.EscalationDesign.THREE_PLUS_THREE
    doses = list(trial.dose_levels.order_by("level").values_list("level", "label", "cells"))
    assert doses == [(1, "Low", 60_000_000), (2, "Medium", 120_000_000), (3, "High", 240_000_000)]
    assert [d.cells_display for d in trial.dose_levels.order_by("level")] == ["6.0×10⁷", "1.2×10⁸", "2.4×10⁸"]
    site = trial.sites.get()
    assert (site.name, site.city, site.time_zone) == ("HelpThera", "Nanjing", "Asia/Shanghai")


def test_criteria_are_numbered_exactly_as_in_the_registry_record():
    _run()
    codes = list(EligibilityCriterion.objects.order_by("order").values_list("code", flat=True))
    assert codes == ["I1", "I2", "I3", "I4"] + [f"E{n}" for n in range(2, 18)]
    i2 = EligibilityCriterion.objects.get(code="I2")
    assert i2.kind == "inclusion"
    assert i2.text.startswith("Female, age between 45 (inclusive) and 85 (inclusive) years")
    assert EligibilityCriterion.objects.get(code="E17").kind == "exclusion"


def test_visit_schedule_counts_from_the_infusion_and_includes_the_end_of_the_dlt_window():
    _run()
    visits = list(VisitDefinition.objects.order_by("day_offset").values_list("day_offset", flat=True))
    assert visits == sorted(visits) and 28 in visits


def test_second_run_changes_nothing_and_says_so():
    _run()
    rows_after_first = _history_rows()
    report, err = _run()
    assert report["created"] is False and report["changed"] is False
    assert report["changes"] == [] and report["differences_kept"] == []
    assert "nothing changed" in err
    assert _history_rows() == rows_after_first


def test_a_parameter_edited_since_the_load_is_kept_and_reported_unless_sync_is_asked():
    _run()
    Trial.objects.filter(registry_id="NCT06949137").update(dlt_window_days=35)
    report, _ = _run()
    assert Trial.objects.get().dlt_window_days == 35
    assert report["differences_kept"] == ["trial.dlt_window_days: 35 → 28"]
    report, _ = _run("--sync")
    assert Trial.objects.get().dlt_window_days == 28
    assert report["changes"] == ["trial.dlt_window_days: 35 → 28"]
    assert (
        Trial.history.filter(dlt_window_days=28)
        .first()
        .history_change_reason.startswith("Loaded from protocol file NCT06949137.json")
    )


def _broken_copy(tmp_path: Path, mutate) -> Path:
    data = json.loads(PROTOCOL_FILE.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda d: d["dose_levels"][1].update(cells="lots"), "dose_levels[1].cells"),
        (lambda d: d["dose_levels"][2].update(cells=-5), "dose_levels[2].cells"),
        (lambda d: d["parameters"].update(infusion_rate_min="25", infusion_rate_max="20"), "infusion_rate_max"),
        (lambda d: d["parameters"].pop("dlt_window_days"), "parameters.dlt_window_days"),
        (lambda d: d["parameters"].update(dlt_windw_days=28), "parameters.dlt_windw_days"),
        (lambda d: d["criteria"][0].update(rule="no_such_rule"), "criteria[0].rule"),
        (lambda d: d["criteria"][16]["params"].update(gilbert_waives_bilirubin="yes"), "criteria[16].params"),  # E14
        (lambda d: d["criteria"][1].update(code="I1"), "criteria[1].code"),
        (lambda d: d["sites"][0].update(time_zone="Mars/Olympus"), "sites[0].time_zone"),
        (lambda d: d.update(planned_enrollment=0), "planned_enrollment"),
        (lambda d: d["dose_levels"][2].update(cells=100), "dose_levels"),
    ],
)
def test_a_malformed_protocol_file_fails_naming_the_file_and_the_field_and_writes_nothing(tmp_path, mutate, named):
    path = _broken_copy(tmp_path, mutate)
    with pytest.raises(CommandError) as raised:
        _run("--file", str(path))
    assert str(raised.value).startswith("broken.json: ")
    assert named in str(raised.value)
    assert Trial.objects.count() == 0 and DoseLevel.objects.count() == 0 and _history_rows() == 0


def test_a_file_that_is_not_json_is_refused_with_its_name(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_text('{"registry_id": "NCT1", \x00', encoding="utf-8")
    with pytest.raises(CommandError, match=r"^garbage.json: not valid JSON"):
        _run("--file", str(path))
    assert Trial.objects.count() == 0


def test_loading_writes_an_audit_row_for_every_record_with_the_file_as_reason():
    _run()
    assert DoseLevel.history.count() == 3
    assert set(DoseLevel.history.values_list("history_change_reason", flat=True)) == {
        "Loaded from protocol file NCT06949137.json (version registry record 2025-04-29)"
    }


def test_sync_never_reopens_a_trial_the_committee_stopped():
    _run()
    Trial.objects.filter(registry_id="NCT06949137").update(status=Trial.Status.STOPPED)
    report, _ = _run("--sync")
    assert Trial.objects.get().status == Trial.Status.STOPPED
    assert not any("status" in line for line in report["changes"] + report["differences_kept"])
