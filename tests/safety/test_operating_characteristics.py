"""Operating characteristics of the protocol's design (issue 15): presets, the data manager's page that runs a
seeded scenario and records the accepted report with the protocol version, and the refusals: after the first
cohort opened (service and database), for a role that may not record, and for bad input."""

import re

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from cohorts import services as cohort_services
from core.errors import DomainError
from core.roles import DATA_MANAGER, SAFETY_COMMITTEE
from safety import dosefinding, selectors, services
from safety.models import SimulationReport
from tests.factories import UserFactory, staff_users

pytestmark = pytest.mark.django_db
RUN = reverse("admin:safety_simulationreport_run")


@pytest.mark.parametrize(
    ("num_doses", "target", "name", "rates"),
    [
        (3, 0.3, "MTD at dose 1", (0.3, 0.45, 0.6)),
        (3, 0.3, "MTD at dose 2", (0.15, 0.3, 0.45)),
        (3, 0.3, "MTD at dose 3", (0.01, 0.15, 0.3)),  # clipped at 0.01, never 0
        (3, 0.3, "every dose safe", (0.03, 0.07, 0.1)),
        (3, 0.3, "dose 1 too toxic", (0.6, 0.75, 0.9)),
        (4, 0.25, "MTD at dose 4", (0.01, 0.01, 0.1, 0.25)),
        (2, 0.6, "dose 1 too toxic", (0.9, 0.95)),  # clipped at 0.95, never 1
    ],
)
def test_presets_put_the_target_where_the_name_says(num_doses, target, name, rates):
    assert dosefinding.preset_scenarios(num_doses, target)[name] == rates


@pytest.mark.parametrize("target", [0, 1, -0.1, True, "0.3"])
def test_presets_need_a_target_strictly_between_0_and_1(target):
    with pytest.raises(ValueError, match="target"):
        dosefinding.preset_scenarios(3, target)


def _manager():
    return UserFactory(username="dm", first_name="Data", last_name="Manager", role=DATA_MANAGER)


def _post(client, trial, **values):
    body = {"trial": trial.pk, "preset": "every dose safe", "true_rates": "", "trials": 2000, "seed": 7,
            "scenario": "", "reason": "", "action": "run"} | values  # fmt: skip
    return client.post(RUN, body)


def _selection(page: str) -> dict[int, float]:
    return {
        int(dose): float(value)
        for dose, value in re.findall(r'<tr data-dose="(\d+)">.*?data-field="selection">([\d.]+)%<', page, re.S)
    }


def test_a_data_manager_runs_a_seeded_scenario_and_sees_the_designs_figures(nct_trial, client):
    client.force_login(_manager())
    page = _post(client, nct_trial).content.decode()
    design = dosefinding.make_design("3+3", num_doses=3, variant="confirm_on_six")
    expected = dosefinding.simulate_operating_characteristics(design, (0.03, 0.07, 0.1), trials=2000, seed=7)
    assert _selection(page) == {d: round(100 * s, 1) for d, s in enumerate(expected.selection, start=1)}
    # every dose safe: the 3+3 ends at the top dose most often, recorded as "MTD not reached" (never selected)
    at_stop = dict(re.findall(r'<tr data-dose="(\d)">.*?data-field="recommended_at_stop">([\d.]+)%<', page, re.S))
    assert max(at_stop, key=lambda dose: float(at_stop[dose])) == "3"
    reached = re.search(r"MTD not reached \(no dose too toxic\)</th><td>([\d.]+)%", page)
    assert float(reached.group(1)) > 50 and _selection(page)[3] == 0
    assert f"{expected.mean_sample_size:.2f}" in page and "2,000 simulated trials, seed 7" in page
    assert "Probability of stopping early" in page and "Expected sample size" in page
    again = _post(client, nct_trial).content.decode()
    report = page.split('id="oc-report"')[1].split("</div>")[0]
    assert again.split('id="oc-report"')[1].split("</div>")[0] == report  # the same seed, the same figures


def test_a_toxic_first_dose_stops_early_most_often_on_the_page(nct_trial, client):
    client.force_login(_manager())
    page = _post(client, nct_trial, preset="dose 1 too toxic").content.decode()
    stop = re.search(r"Probability of stopping early.*?<td>([\d.]+)%</td>", page, re.S)
    assert float(stop.group(1)) > 50


def test_entered_rates_override_the_preset_and_bad_ones_are_refused_on_the_page(nct_trial, client):
    client.force_login(_manager())
    page = _post(client, nct_trial, true_rates="0.05, 0.15, 0.30").content.decode()
    assert "Scenario: entered: 0.05, 0.15, 0.3" in page
    assert (
        "Give one true DLT probability per dose (3)" in _post(client, nct_trial, true_rates="0.1,0.2").content.decode()
    )
    assert "a probability lies between 0 and 1" in _post(client, nct_trial, true_rates="0.1,0.2,1.5").content.decode()
    too_many = _post(client, nct_trial, trials=SimulationReport.MAX_TRIALS + 1).content.decode()
    assert "Ensure this value is less than or equal to 10000" in too_many and 'id="oc-report"' not in too_many


def test_the_data_manager_records_the_accepted_report_with_the_protocol_version(nct_trial, client):
    client.force_login(_manager())
    response = _post(client, nct_trial, preset="MTD at dose 2", action="record", reason="SAP section 9.2")
    record = SimulationReport.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "admin:safety_simulationreport_change", args=[record.pk]
    )
    assert (record.protocol_version, record.scenario, record.trials, record.seed) == (
        nct_trial.protocol_version, "MTD at dose 2", 2000, 7,
    )  # fmt: skip
    design = dosefinding.make_design("3+3", num_doses=3, variant="confirm_on_six")
    again = dosefinding.simulate_operating_characteristics(design, (0.15, 0.3, 0.45), trials=2000, seed=7)
    assert record.report == again.to_dict()  # the inputs reproduce the recorded report
    assert record.report_digest == selectors.sha256_hex(selectors.canonical_json(record.report))
    assert record.decision_tables == selectors.decision_tables(nct_trial, num_doses=3)
    assert record.history.get().history_change_reason.endswith("SAP section 9.2")
    shown = client.get(response.url).content.decode()
    assert 'id="oc-doses"' in shown and 'id="three-plus-three-table"' in shown


def test_recording_is_refused_once_the_first_cohort_opened(nct_trial, client):
    manager = _manager()
    services.simulation_report_record(trial=nct_trial, scenario="before", true_rates=[0.1, 0.2, 0.3], trials=10,
                                      seed=1, reason="SAP", by=manager)  # fmt: skip
    _, investigator = staff_users()
    cohort_services.cohort_open_first(trial=nct_trial, by=investigator)
    with pytest.raises(DomainError) as refused:
        services.simulation_report_record(trial=nct_trial, scenario="after", true_rates=[0.1, 0.2, 0.3], trials=10,
                                          seed=1, reason="SAP", by=manager)  # fmt: skip
    assert refused.value.code == "simulation_after_first_cohort"
    client.force_login(manager)
    page = client.get(RUN, {"trial": nct_trial.pk}).content.decode()
    assert "reports can no longer be recorded" in page and 'value="record"' not in page
    assert SimulationReport.objects.filter(scenario="after").count() == 0


def test_the_database_refuses_a_report_after_the_first_cohort_and_any_change_to_one(nct_trial):
    manager = _manager()
    record = services.simulation_report_record(trial=nct_trial, scenario="x", true_rates=[0.1, 0.2, 0.3], trials=10,
                                               seed=1, reason="SAP", by=manager)  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        SimulationReport.objects.filter(pk=record.pk).update(reason="changed")
    _, investigator = staff_users()
    cohort_services.cohort_open_first(trial=nct_trial, by=investigator)
    late = SimulationReport.objects.get(pk=record.pk)
    late.pk, late.scenario = None, "late"
    with pytest.raises(IntegrityError), transaction.atomic():
        late.save()


def test_a_committee_member_may_run_the_page_but_not_record(nct_trial, client):
    member = UserFactory(username="src", first_name="Ana", last_name="Costa", role=SAFETY_COMMITTEE)
    client.force_login(member)
    page = _post(client, nct_trial).content.decode()
    assert 'id="oc-report"' in page and 'value="record"' not in page
    refused = _post(client, nct_trial, action="record", reason="SAP").content.decode()
    assert "Your role does not allow you to record operating characteristics" in refused
    assert not SimulationReport.objects.exists()
    with pytest.raises(DomainError) as denied:
        services.simulation_report_record(trial=nct_trial, scenario="x", true_rates=[0.1, 0.2, 0.3], trials=10,
                                          seed=1, reason="SAP", by=member)  # fmt: skip
    assert denied.value.code == "permission_denied"


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"reason": "  "}, "reason_required"),
        ({"scenario": ""}, "invalid"),
        ({"trials": 0}, "invalid"),
        ({"trials": SimulationReport.MAX_TRIALS + 1}, "invalid"),
        ({"seed": -1}, "invalid"),
        ({"true_rates": [0.1, 0.2]}, "invalid"),
        ({"true_rates": [0.1, 0.2, "x"]}, "invalid"),
        ({"reason": "bad\x00"}, "reason_required"),
    ],
)
def test_the_service_refuses_bad_input_before_anything_is_written(nct_trial, values, code):
    args = {"scenario": "s", "true_rates": [0.1, 0.2, 0.3], "trials": 10, "seed": 1, "reason": "SAP"} | values
    with pytest.raises(DomainError) as refused:
        services.simulation_report_record(trial=nct_trial, by=_manager(), **args)
    assert refused.value.code == code
    assert not SimulationReport.objects.exists()


def test_a_scenario_is_recorded_once_per_protocol_version(nct_trial):
    manager = _manager()
    args = {"trial": nct_trial, "scenario": "s", "true_rates": [0.1, 0.2, 0.3], "trials": 10, "seed": 1,
            "reason": "SAP", "by": manager}  # fmt: skip
    services.simulation_report_record(**args)
    with pytest.raises(DomainError) as refused:
        services.simulation_report_record(**args)
    assert refused.value.code == "simulation_already_recorded"


@pytest.mark.parametrize("recorded", [1, 5])
def test_the_page_and_the_list_read_a_constant_number_of_queries(
    nct_trial, client, django_assert_max_num_queries, recorded
):
    manager = _manager()
    for n in range(recorded):
        services.simulation_report_record(trial=nct_trial, scenario=f"s{n}", true_rates=[0.1, 0.2, 0.3], trials=10,
                                          seed=n, reason="SAP", by=manager)  # fmt: skip
    client.force_login(manager)
    with django_assert_max_num_queries(16):
        assert _post(client, nct_trial).status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get(reverse("admin:safety_simulationreport_changelist")).status_code == 200
