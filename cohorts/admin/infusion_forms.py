"""The infusion page's forms and inlines: the start form, the bedside form (finish or resume), drip-rate
readings with the protocol's range as a guide, vital signs and interruptions. They validate their
fields only; ``InfusionAdmin`` calls the services."""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.templatetags.static import static
from django.utils import timezone
from django.utils.html import format_html

from cohorts.models import (
    IMPLAUSIBLE_RATE_FACTOR,
    DripRateReading,
    Infusion,
    InfusionInterruption,
    Participant,
    VitalSigns,
    ml_per_hour,
)
from core.admin import ServiceRefusalForm
from core.cleaning import clean_drip_rate, plain_number
from core.errors import DomainError


def rate_guide(ranges: dict[int, tuple[Decimal, Decimal, int]], *, participant_id: int | None) -> str:
    """The protocol's drip-rate range and a small script that marks a rate outside it red as it is typed.

    ``ranges`` maps participant id → (min, max, drop factor); on the add page the script follows the
    participant chosen, on the change page it is the infusion's own.
    """
    data = {str(pk): [str(low), str(high), factor] for pk, (low, high, factor) in ranges.items()}
    text = "Choose the participant: her protocol's range applies."
    if participant_id in ranges:
        low, high, factor = ranges[participant_id]
        text = (
            f"Protocol rate {plain_number(low)}–{plain_number(high)} drops/min = {ml_per_hour(low, factor)}–"
            f"{ml_per_hour(high, factor)} mL/h with a {factor} drops/mL set. A rate outside it is saved, flagged "
            "and opens a protocol deviation."
        )
    elif len({tuple(v[:2]) for v in data.values()}) == 1:
        low, high, factor = next(iter(ranges.values()))
        text = f"Protocol rate {plain_number(low)}–{plain_number(high)} drops/min."
    return format_html(
        '<span id="rate-guide" data-ranges="{}" data-participant="{}">{}</span><script src="{}"></script>',
        json.dumps(data),
        participant_id or "",
        text,
        static("cohorts/admin/rate_guide.js"),
    )


class DripRateReadingForm(forms.ModelForm):
    class Meta:
        model = DripRateReading
        fields = ("observed_at", "drops_per_minute")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "drops_per_minute" in self.fields:
            self.fields["drops_per_minute"] = forms.CharField(
                label="Drops/min", max_length=20, widget=forms.TextInput(attrs={"size": 6, "inputmode": "decimal"})
            )
        if "observed_at" in self.fields and not self.instance.pk:
            # Prefilled with now; the hidden initial keeps an untouched extra row from counting as typed in.
            self.fields["observed_at"].initial = timezone.now
            self.fields["observed_at"].show_hidden_initial = True

    def clean_drops_per_minute(self):
        try:
            return clean_drip_rate(self.cleaned_data["drops_per_minute"])
        except DomainError as refused:
            raise ValidationError(refused.message, code=refused.code) from None


class DripRateReadingInline(admin.TabularInline):
    model = DripRateReading
    form = DripRateReadingForm
    fields = ("observed_at", "drops_per_minute", "ml_h", "flag")
    readonly_fields = ("ml_h", "flag")
    extra = 1
    can_delete = False
    verbose_name = "drip-rate reading"

    def has_change_permission(self, request, obj=None):
        return False  # readings are kept as observed; a wrong one is corrected by a new reading

    @admin.display(description="mL/h")
    def ml_h(self, reading):
        return reading.ml_per_hour if reading.pk else "—"

    @admin.display(description="Protocol")
    def flag(self, reading):
        if not reading.pk:
            return ""
        if not reading.out_of_range:
            return "✔ in range"
        deviation = getattr(reading, "deviation", None)
        return format_html(
            '<strong style="color:#ba2121">✘ outside {}–{}</strong>{}',
            plain_number(reading.rate_min),
            plain_number(reading.rate_max),
            f" (deviation #{deviation.pk})" if deviation else "",
        )


class VitalSignsInline(admin.TabularInline):
    model = VitalSigns
    fields = (
        "timepoint",
        "measured_at",
        "systolic_bp",
        "diastolic_bp",
        "heart_rate",
        "temperature_c",
        "spo2_pct",
        "respiratory_rate",
    )
    extra = 1
    can_delete = False
    verbose_name_plural = "vital signs (before, during, after)"

    def has_change_permission(self, request, obj=None):
        return False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.base_fields["measured_at"].initial = timezone.now
        formset.form.base_fields["measured_at"].show_hidden_initial = True  # an untouched extra row stays empty
        formset.form.base_fields["timepoint"].initial = VitalSigns.Timepoint.DURING if obj else "before"
        return formset


class InterruptionInline(admin.TabularInline):
    model = InfusionInterruption
    fields = ("stopped_at", "restarted_at", "reason")
    extra = 0
    can_delete = False

    def has_change_permission(self, request, obj=None):
        return False  # an open interruption is resumed with “Restart at” above


class InfusionStartForm(ServiceRefusalForm):
    """What the nurse enters to start an infusion; the service checks and records it."""

    cells_in_product = forms.IntegerField(
        label="Cells in the product",
        required=False,
        min_value=1,
        help_text="Exact count from the product label; empty = the cohort's dose level.",
    )
    set_drop_factor = forms.IntegerField(
        label="Giving set (drops/mL)", required=False, help_text="Empty = the trial's default giving set."
    )
    volume_to_give_ml = forms.DecimalField(label="Volume to give (mL)", required=False, max_digits=7, decimal_places=1)

    class Meta:
        model = Infusion
        fields = ("participant", "started_at", "product_lot", "product_expiry", "premedication")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "participant" in self.fields:
            self.fields["participant"].queryset = (
                Participant.objects.filter(status=Participant.Status.ENROLLED, replaced=False)
                .select_related("trial")
                .order_by("study_id")
            )
            self.fields["participant"].help_text = "Enrolled participants not infused yet."
        if "started_at" in self.fields:
            self.fields["started_at"].initial = timezone.now


class InfusionFinishForm(ServiceRefusalForm):
    """The bedside form of a running infusion: readings and vitals below; finish or resume here."""

    OUTCOMES = (
        ("", "Still running"),
        ("complete", "Completed: product given in full"),
        ("stop_early", "Stopped early"),
    )

    outcome = forms.ChoiceField(label="Finish", choices=OUTCOMES, required=False)
    finished_at = forms.SplitDateTimeField(label="Ended at", required=False, widget=admin.widgets.AdminSplitDateTime)
    cells_given = forms.IntegerField(label="Cells given", required=False, min_value=0)
    volume_given_ml = forms.DecimalField(label="Volume given (mL)", required=False, max_digits=7, decimal_places=1)
    why_stopped = forms.CharField(
        label="Reason stopped early", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    restart_at = forms.SplitDateTimeField(
        label="Restart at",
        required=False,
        widget=admin.widgets.AdminSplitDateTime,
        help_text="Resume an interrupted infusion.",
    )
    confirm_implausible_rate = forms.BooleanField(
        label="Confirm an implausible average rate",
        required=False,
        help_text=f"Only after the average rate was refused as implausible (above {IMPLAUSIBLE_RATE_FACTOR} × the "
        "protocol maximum) and you checked the end time, interruptions, volume and giving set: it is then saved as "
        "entered, flagged, and a major deviation opens.",
    )

    class Meta:
        model = Infusion
        fields = ()

    def clean(self):
        cleaned = super().clean()
        outcome = cleaned.get("outcome")
        if outcome:
            for name in ("finished_at", "cells_given", "volume_given_ml"):
                if cleaned.get(name) is None and name not in self.errors:
                    self.add_error(name, "Required to finish the infusion.")
        if outcome == "stop_early" and not (cleaned.get("why_stopped") or "").strip():
            self.add_error("why_stopped", "Give the reason the infusion was stopped.")
        return cleaned
