"""Operating characteristics (issue 15): the data manager's page that simulates the protocol's design under a
scenario of true DLT probabilities (entered, or a preset), and records the accepted report with the protocol
version before the first cohort opens. Recorded reports are read-only.

Runs synchronously: 10,000 trials of a 3-dose design take about 0.1 s (bench/README.md), and the page caps N
at ``SimulationReport.MAX_TRIALS``. The record is simulated again by the service from the same inputs.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.errors import DomainError
from safety import dosefinding, selectors, services
from safety.models import SimulationReport
from trial.models import Trial


class OperatingCharacteristicsForm(forms.Form):
    # chosen above the form (``?trial=``), so that the presets offered are that trial's
    trial = forms.ModelChoiceField(queryset=Trial.objects.order_by("registry_id"), widget=forms.HiddenInput)
    preset = forms.ChoiceField(required=False, label="Preset scenario")
    true_rates = forms.CharField(
        required=False,
        label="True DLT probability per dose",
        help_text="Comma-separated, dose 1 first, e.g. 0.05, 0.15, 0.30. Empty: the preset's.",
    )
    trials = forms.IntegerField(
        label="Simulated trials",
        min_value=1,
        max_value=SimulationReport.MAX_TRIALS,
        initial=SimulationReport.MAX_TRIALS,
    )
    seed = forms.IntegerField(min_value=0, max_value=2**63 - 1, initial=1)
    scenario = forms.CharField(
        required=False, max_length=80, help_text="The name it is recorded under; empty: the preset's name."
    )
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Required to record: why this report is accepted (e.g. the SAP section it answers).",
    )

    def __init__(self, *args, presets: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.presets = presets
        self.fields["preset"].choices = [
            (name, f"{name}: {', '.join(f'{p:.2f}' for p in rates)}") for name, rates in presets.items()
        ]

    def clean_true_rates(self):
        text = self.cleaned_data["true_rates"].strip()
        if not text:
            return None
        try:
            return [float(part) for part in text.replace(";", ",").split(",")]
        except ValueError:
            raise forms.ValidationError("Numbers separated by commas, e.g. 0.05, 0.15, 0.30.") from None

    def scenario_rates(self) -> tuple[str, list[float]]:
        rates = self.cleaned_data["true_rates"]
        preset = self.cleaned_data.get("preset") or next(iter(self.presets))
        if rates is None:
            return self.cleaned_data["scenario"] or preset, list(self.presets[preset])
        return self.cleaned_data["scenario"] or "entered: " + ", ".join(f"{p:g}" for p in rates), rates


def _presets(trial: Trial | None) -> dict:
    if trial is None:
        return {}
    return dosefinding.preset_scenarios(max(trial.dose_levels.count(), 1), float(trial.boin_target_rate))


@admin.register(SimulationReport)
class SimulationReportAdmin(admin.ModelAdmin):
    list_display = ("trial", "protocol_version", "scenario", "design_label", "trials", "seed", "recorded_by",
                    "recorded_at")  # fmt: skip
    list_filter = ("trial", "protocol_version")
    list_select_related = ("trial", "recorded_by")
    fieldsets = (
        ("Accepted", {"fields": ("trial", "protocol_version", "scenario", "design_label", "true_rates", "trials",
                                 "seed", "reason", "recorded_by", "recorded_at", "report_digest")}),
        ("Operating characteristics", {"fields": ("report_table",)}),
        ("Decision tables frozen with this protocol version", {"fields": ("tables",), "classes": ("collapse",)}),
    )  # fmt: skip
    readonly_fields = tuple(name for _, section in fieldsets for name in section["fields"])

    class Media:
        css = {"all": ("safety/dosefinding.css",)}

    def has_change_permission(self, request, obj=None):
        return False  # a recorded report never changes (a database trigger refuses it too)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Design")
    def design_label(self, obj):
        return obj.design.get("label", obj.design.get("design", ""))

    @admin.display(description="Report")
    def report_table(self, obj):
        oc = selectors.oc_display(obj.report, label=self.design_label(obj))
        return render_to_string("safety/dosefinding/_oc_report.html", {"oc": oc})

    @admin.display(description="Decision tables")
    def tables(self, obj):
        tables = obj.decision_tables
        df = {
            "protocol_version": obj.protocol_version,
            "three": tables["3+3"],
            "three_grid": selectors.three_plus_three_grid(tables["3+3"]),
            "boin": tables["boin"],
            "boin_grid": selectors.boin_grid(tables["boin"]),
        }
        return render_to_string("safety/dosefinding/_decision_tables.html", {"df": df})

    def get_urls(self):
        view = self.admin_site.admin_view(self.run_view)
        return [path("run/", view, name="safety_simulationreport_run"), *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        return redirect(reverse("admin:safety_simulationreport_run"))

    def run_view(self, request):
        """GET: the form (``?trial=`` picks the trial whose presets are offered). POST ``action=run`` shows the
        report; ``action=record`` records it through ``services.simulation_report_record``."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else None
        chosen = (data or request.GET).get("trial")
        trial = Trial.objects.filter(pk=chosen).first() if str(chosen or "").isdigit() else None
        trial = trial or Trial.objects.order_by("registry_id").first()
        form = OperatingCharacteristicsForm(data, presets=_presets(trial), initial={"trial": trial})
        report = None
        if data is not None and form.is_valid():
            trial = form.cleaned_data["trial"]
            scenario, rates = form.scenario_rates()
            inputs = {"true_rates": rates, "trials": form.cleaned_data["trials"], "seed": form.cleaned_data["seed"]}
            try:
                if data.get("action") == "record":
                    record = services.simulation_report_record(
                        trial=trial, scenario=scenario, reason=form.cleaned_data["reason"], by=request.user, **inputs
                    )
                    self.message_user(request, f"Recorded: {record}.", messages.SUCCESS)
                    return redirect(reverse("admin:safety_simulationreport_change", args=[record.pk]))
                oc = selectors.operating_characteristics(trial, max_trials=SimulationReport.MAX_TRIALS, **inputs)
                report = selectors.oc_display(oc.to_dict(), label=oc.design.label) | {"scenario": scenario}
            except DomainError as refused:
                self.message_user(request, f"Not done: {refused.message}", messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Operating characteristics of the protocol's design",
            "form": form,
            "trial": trial,
            "report": report,
            "trials": Trial.objects.order_by("registry_id"),
            "max_trials": f"{SimulationReport.MAX_TRIALS:,}",
            "can_record": self.has_add_permission(request),
            "first_cohort_open": bool(trial and trial.cohorts.exists()),
            "media": self.media,
        }
        return TemplateResponse(request, "admin/safety/simulationreport/run.html", context)
