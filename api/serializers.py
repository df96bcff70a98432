"""Serializers every app's API shares, and the trial's."""

from django.db import models
from rest_framework import serializers

from api.fields import TextField
from trial.models import DoseLevel, EligibilityCriterion, Site, Trial, VisitDefinition


class StrictSerializer(serializers.Serializer):
    """Unknown keys are a 400: a misspelt field must never be silently ignored on a safety record."""

    # Its docstring is the schema's description of the serializers that add none (keep it as it is).
    # Protocol and term files use it too: a typo in a parameter name is an error, never ignored.

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


class InputModelSerializer(serializers.ModelSerializer):
    """A model serializer that reads requests: the model's text columns become ``TextField`` (no numbers)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: TextField,
        models.TextField: TextField,
    }


class DoseLevelSerializer(serializers.ModelSerializer):
    cells_display = serializers.CharField(read_only=True)

    class Meta:
        model = DoseLevel
        fields = ("id", "level", "label", "cells", "cells_display")


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ("id", "name", "city", "region", "country", "time_zone")


class CriterionSerializer(serializers.ModelSerializer):
    class Meta:
        model = EligibilityCriterion
        fields = ("code", "kind", "text", "needs_judgment")


class VisitDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = VisitDefinition
        fields = ("code", "name", "day_offset", "window_before_days", "window_after_days")


class TrialSerializer(serializers.ModelSerializer):
    sites = SiteSerializer(many=True, read_only=True)
    dose_levels = DoseLevelSerializer(many=True, read_only=True)
    criteria = CriterionSerializer(many=True, read_only=True)
    visit_schedule = VisitDefinitionSerializer(many=True, read_only=True)

    class Meta:
        model = Trial
        fields = (
            "id",
            "registry_id",
            "title",
            "short_title",
            "phase",
            "design",
            "product",
            "sponsor",
            "planned_enrollment",
            "status",
            "protocol_version",
            "eligible_sex",
            "min_age_years",
            "max_age_years",
            "escalation_design",
            "boin_target_rate",
            "cohort_size",
            "max_per_dose_level",
            "dlt_window_days",
            "sentinel_observation_days",
            "stagger_hours",
            "infusion_rate_min",
            "infusion_rate_max",
            "default_drop_factor",
            "dose_tolerance_pct",
            "max_infusions_per_participant",
            "review_quorum",
            "dlt_min_grade",
            "dlt_min_relationship",
            "dlt_stop_count",
            "stop_on_related_death",
            "lost_to_follow_up_missed_visits",
            "sites",
            "dose_levels",
            "criteria",
            "visit_schedule",
        )
