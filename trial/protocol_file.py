"""Reading and validating a protocol data file (JSON) before anything is written.

The DRF serializers below are the file's schema; an error names the file and the field path,
e.g. ``NCT06949137.json: dose_levels[1].cells: A valid integer is required.``
"""

import json
import zoneinfo
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from rest_framework import serializers

from api.serializers import StrictSerializer
from cohorts.rules import CriterionSpec, EligibilityConfigError, known_rules, validate_criteria
from core.errors import ErrorCode, InvalidInput
from trial.models import EligibilityCriterion, Trial


def _lead_days(minimum: int, maximum: int) -> serializers.IntegerField:
    """A reminder lead time: optional, empty means the default (reminders.kinds.LEAD_DEFAULTS)."""
    return serializers.IntegerField(min_value=minimum, max_value=maximum, required=False, allow_null=True, default=None)


class ParametersSchema(StrictSerializer):
    escalation_design = serializers.ChoiceField(choices=Trial.EscalationDesign.choices)
    three_plus_three_variant = serializers.ChoiceField(
        choices=Trial.ThreePlusThreeVariant.choices, required=False, default=Trial.ThreePlusThreeVariant.CONFIRM_ON_SIX
    )
    evaluability_rule = serializers.ChoiceField(
        choices=Trial.EvaluabilityRule.choices, required=False, default=Trial.EvaluabilityRule.FULL_DOSE_OR_DLT
    )
    boin_target_rate = serializers.DecimalField(
        max_digits=4, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("0.999")
    )
    cohort_size = serializers.IntegerField(min_value=1, max_value=100)
    max_per_dose_level = serializers.IntegerField(min_value=1, max_value=1000)
    dlt_window_days = serializers.IntegerField(min_value=1, max_value=3650)
    sentinel_observation_days = serializers.IntegerField(min_value=0, max_value=3650)
    stagger_hours = serializers.IntegerField(min_value=0, max_value=24 * 365)
    infusion_rate_min = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=Decimal("0.01"))
    infusion_rate_max = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=Decimal("0.01"))
    default_drop_factor = serializers.IntegerField(min_value=1, max_value=100)
    dose_tolerance_pct = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("100")
    )
    max_infusions_per_participant = serializers.IntegerField(min_value=1, max_value=100)
    review_quorum = serializers.IntegerField(min_value=1, max_value=50)
    dlt_min_grade = serializers.IntegerField(min_value=1, max_value=5)
    dlt_min_relationship = serializers.ChoiceField(choices=["unlikely", "possible", "probable", "definite"])
    dlt_stop_count = serializers.IntegerField(min_value=1, max_value=100)
    stop_on_related_death = serializers.BooleanField()
    lost_to_follow_up_missed_visits = serializers.IntegerField(min_value=1, max_value=100, required=False, default=2)
    visit_reminder_days = serializers.IntegerField(
        min_value=0, max_value=365, required=False, allow_null=True, default=None
    )
    review_target_days = serializers.IntegerField(
        min_value=1, max_value=365, required=False, allow_null=True, default=None
    )
    review_reminder_days = serializers.IntegerField(
        min_value=0, max_value=365, required=False, allow_null=True, default=None
    )
    report_reminder_days = serializers.IntegerField(
        min_value=0, max_value=15, required=False, allow_null=True, default=None
    )
    sae_follow_up_days = serializers.IntegerField(
        min_value=1, max_value=365, required=False, allow_null=True, default=None
    )

    def validate(self, attrs):
        if attrs["infusion_rate_max"] < attrs["infusion_rate_min"]:
            raise serializers.ValidationError({"infusion_rate_max": ["Must not be below infusion_rate_min."]})
        if attrs["max_per_dose_level"] < attrs["cohort_size"]:
            raise serializers.ValidationError({"max_per_dose_level": ["Must not be below cohort_size."]})
        return attrs


class SiteSchema(StrictSerializer):
    name = serializers.CharField(max_length=200)
    city = serializers.CharField(max_length=120)
    region = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    country = serializers.CharField(max_length=120)
    time_zone = serializers.CharField(max_length=64)

    def validate_time_zone(self, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone.") from None
        return value


class DoseLevelSchema(StrictSerializer):
    level = serializers.IntegerField(min_value=1, max_value=100)
    label = serializers.CharField(max_length=60)
    cells = serializers.IntegerField(min_value=1, max_value=10**15)


class CriterionSchema(StrictSerializer):
    code = serializers.RegexField(r"^[A-Z][0-9A-Za-z]{0,15}$", max_length=16)
    kind = serializers.ChoiceField(choices=EligibilityCriterion.Kind.choices)
    text = serializers.CharField()
    rule = serializers.CharField(max_length=80)
    params = serializers.DictField(required=False, default=dict)
    needs_judgment = serializers.BooleanField(default=False)


class VisitSchema(StrictSerializer):
    code = serializers.CharField(max_length=16)
    name = serializers.CharField(max_length=120)
    day_offset = serializers.IntegerField(min_value=0, max_value=3650)
    window_before_days = serializers.IntegerField(min_value=0, max_value=365)
    window_after_days = serializers.IntegerField(min_value=0, max_value=365)

    def validate(self, attrs):
        if attrs["window_before_days"] > attrs["day_offset"]:
            raise serializers.ValidationError({"window_before_days": ["The window cannot open before the infusion."]})
        return attrs


def _unique(items: list[dict], key: str, what: str) -> None:
    seen = set()
    for index, item in enumerate(items):
        if item[key] in seen:
            raise serializers.ValidationError({f"{what}[{index}].{key}": [f"Duplicate {key} {item[key]!r}."]})
        seen.add(item[key])


class ProtocolSchema(StrictSerializer):
    registry_id = serializers.RegexField(r"^[A-Za-z0-9_-]{3,32}$")
    title = serializers.CharField(max_length=500)
    short_title = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    phase = serializers.ChoiceField(choices=Trial.Phase.choices)
    design = serializers.CharField(max_length=200)
    product = serializers.CharField(max_length=200)
    sponsor = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    planned_enrollment = serializers.IntegerField(min_value=1, max_value=100000)
    status = serializers.ChoiceField(choices=Trial.Status.choices)
    protocol_version = serializers.CharField(max_length=40)
    eligible_sex = serializers.ChoiceField(choices=Trial.Sex.choices)
    min_age_years = serializers.IntegerField(min_value=0, max_value=150)
    max_age_years = serializers.IntegerField(min_value=0, max_value=150)
    parameters = ParametersSchema()
    sites = SiteSchema(many=True, allow_empty=False)
    dose_levels = DoseLevelSchema(many=True, allow_empty=False)
    criteria = CriterionSchema(many=True, allow_empty=False)
    visit_schedule = VisitSchema(many=True)

    def validate(self, attrs):
        if attrs["max_age_years"] < attrs["min_age_years"]:
            raise serializers.ValidationError({"max_age_years": ["Must not be below min_age_years."]})
        _unique(attrs["sites"], "name", "sites")
        _unique(attrs["dose_levels"], "level", "dose_levels")
        _unique(attrs["dose_levels"], "label", "dose_levels")
        _unique(attrs["criteria"], "code", "criteria")
        _unique(attrs["visit_schedule"], "code", "visit_schedule")
        levels = sorted(d["level"] for d in attrs["dose_levels"])
        if levels != list(range(1, len(levels) + 1)):
            raise serializers.ValidationError({"dose_levels": ["Levels must be numbered 1, 2, 3… without gaps."]})
        by_level = sorted(attrs["dose_levels"], key=lambda d: d["level"])
        for lower, higher in pairwise(by_level):
            if higher["cells"] <= lower["cells"]:
                raise serializers.ValidationError(
                    {"dose_levels": [f"Dose level {higher['level']} must have more cells than level {lower['level']}."]}
                )
        registered = known_rules()
        for index, criterion in enumerate(attrs["criteria"]):
            if criterion["rule"] not in registered:
                raise serializers.ValidationError(
                    {f"criteria[{index}].rule": [f"No eligibility rule is registered as {criterion['rule']!r}."]}
                )
            try:  # the params too: every rule reads them before any fact
                validate_criteria(
                    [
                        CriterionSpec(
                            code=criterion["code"],
                            kind=criterion["kind"],
                            rule=criterion["rule"],
                            params=criterion["params"],
                        )
                    ]
                )
            except (EligibilityConfigError, TypeError, ValueError) as exc:
                raise serializers.ValidationError({f"criteria[{index}].params": [str(exc)]}) from None
        return attrs


def error_paths(detail: Any, prefix: str = "") -> list[str]:
    """A serializer's errors as ``path: message`` lines, e.g. ``dose_levels[1].cells: A valid integer is required.``"""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            key = f"[{key}]" if isinstance(key, int) or str(key).isdigit() else str(key)
            if key == "non_field_errors":
                path = prefix
            elif key.startswith("["):
                path = f"{prefix}{key}"
            else:
                path = f"{prefix}.{key}" if prefix else key
            out += error_paths(value, path)
        return out
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [f"{prefix or '(file)'}: {item}" for item in detail]
        out = []
        for index, item in enumerate(detail):
            if item:
                out += error_paths(item, f"{prefix}[{index}]")
        return out
    return [f"{prefix or '(file)'}: {detail}"]


def read_protocol_file(path: Path) -> dict:
    """Parse and validate ``path``; raise InvalidInput naming the file and every bad field."""
    name = path.name
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(ErrorCode.PROTOCOL_FILE_MISSING, f"{path}: no such protocol file.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(ErrorCode.PROTOCOL_FILE_MALFORMED, f"{name}: not valid JSON ({exc}).") from None
    if not isinstance(raw, dict):
        raise InvalidInput(ErrorCode.PROTOCOL_FILE_MALFORMED, f"{name}: the top level must be a JSON object.")
    schema = ProtocolSchema(data=raw)
    if not schema.is_valid():
        problems = error_paths(schema.errors)
        raise InvalidInput(
            ErrorCode.PROTOCOL_FILE_INVALID,
            f"{name}: " + "; ".join(problems),
            fields={p.split(": ", 1)[0]: [p.split(": ", 1)[1]] for p in problems},
        )
    return schema.validated_data
