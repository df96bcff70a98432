"""Recording the operating characteristics a data manager accepts for a protocol version (issue 15).

Only before the trial's first cohort opens: the trial row is locked (``cohort_open_first`` locks it too), the
cohorts are counted, and the database's trigger refuses a late insert whatever path it takes. The report is
simulated again here from the scenario, the number of trials and the seed, so what is recorded is exactly what
those inputs give, never numbers posted by a browser.
"""

from django.db import transaction
from django.utils import timezone

from core.cleaning import clean_text
from core.errors import ErrorCode, RuleViolation, require_permission
from core.history import audit
from safety.models import SimulationReport
from safety.selectors import canonical_json, decision_tables, operating_characteristics, sha256_hex
from trial.models import Trial


def simulation_report_record(
    *, trial: Trial, scenario: str, true_rates, trials: int, seed: int, reason: str, by
) -> SimulationReport:
    """Simulate the protocol's design under ``true_rates`` and record the report with the protocol version."""
    require_permission(by, "safety.add_simulationreport", "record operating characteristics (data managers)")
    scenario = clean_text(scenario, field="scenario", label="The scenario's name", max_length=80, required=True)
    reason = clean_text(reason, field="reason", label="Reason", max_length=2000, required=True,
                        code=ErrorCode.REASON_REQUIRED)  # fmt: skip
    with transaction.atomic():
        trial = Trial.objects.select_for_update().get(pk=trial.pk)
        if trial.cohorts.exists():
            raise RuleViolation(
                ErrorCode.SIMULATION_AFTER_FIRST_COHORT,
                f"{trial.registry_id} has opened its first cohort: operating characteristics are accepted before "
                "the first enrollment. A new protocol version is a new trial setup.",
            )
        if SimulationReport.objects.filter(
            trial=trial, protocol_version=trial.protocol_version, scenario=scenario
        ).exists():
            raise RuleViolation(
                ErrorCode.SIMULATION_ALREADY_RECORDED,
                f"'{scenario}' is recorded already for protocol version {trial.protocol_version}: name the scenario "
                "differently.",
                {"scenario": ["Recorded already."]},
            )
        oc = operating_characteristics(
            trial, true_rates=true_rates, trials=trials, seed=seed, max_trials=SimulationReport.MAX_TRIALS
        )
        report = oc.to_dict()
        record = SimulationReport(
            trial=trial,
            protocol_version=trial.protocol_version,
            scenario=scenario,
            design=oc.design.to_dict() | {"label": oc.design.label},
            true_rates=list(oc.true_rates),
            trials=trials,
            seed=seed,
            report=report,
            decision_tables=decision_tables(trial, num_doses=oc.design.num_doses),
            report_digest=sha256_hex(canonical_json(report)),
            reason=reason,
            recorded_by=by,
            recorded_at=timezone.now(),
        )
        audit(record, by=by, reason=f"Operating characteristics accepted ({scenario}): {reason}").save()
    return record
