"""The simulation report model (issue 15), in its own module because ``safety/models.py`` is at the size limit;
``safety.models`` imports it, so it is a model of the ``safety`` app like the others."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.history import audited_history


class SimulationReport(models.Model):
    """Operating characteristics a data manager accepted for a protocol version, before the first cohort opened.

    The protocol's design with its parameters, the scenario of true DLT probabilities, the number of simulated
    trials and the seed reproduce ``report`` exactly (``safety.dosefinding.simulate_operating_characteristics``);
    ``decision_tables`` freezes the design's decision tables with the same protocol version. A database trigger
    refuses a new report once the trial has a cohort, and any change to a recorded one.
    """

    MAX_TRIALS = 10_000  # run synchronously: about 0.1 s for 3 doses (bench/README.md)

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="simulation_reports")
    protocol_version = models.CharField(max_length=40)
    scenario = models.CharField(max_length=80, help_text="e.g. 'MTD at dose 2', or the sponsor's own scenario name")
    design = models.JSONField(help_text="The protocol's design and its parameters when the report was run.")
    true_rates = models.JSONField(help_text="True DLT probability per dose, dose 1 first.")
    trials = models.PositiveIntegerField("simulated trials")
    seed = models.PositiveBigIntegerField()
    report = models.JSONField(help_text="Per dose: P(selected as MTD), mean treated, mean DLTs; P(stop early); E[n].")
    decision_tables = models.JSONField(help_text="The design's decision tables, frozen with the protocol version.")
    report_digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of the report.")
    reason = models.TextField(help_text="Why this report is accepted (e.g. the SAP section it answers).")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    history = audited_history()

    class Meta:
        ordering = ["trial", "protocol_version", "recorded_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(trials__gte=1) & Q(trials__lte=10_000), name="simulationreport_trials_1_to_10000"
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="simulationreport_reason_required"),
            models.CheckConstraint(condition=~Q(scenario=""), name="simulationreport_scenario_named"),
            models.UniqueConstraint(
                fields=["trial", "protocol_version", "scenario"], name="simulationreport_one_per_scenario_and_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trial.registry_id} v{self.protocol_version}: {self.scenario} ({self.trials} trials)"
