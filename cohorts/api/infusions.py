"""REST API for infusions and drip-rate readings (``/api/v1/infusions/``).

Same shape as the rest of ``cohorts.api``: a serializer checks the request's shape, then ONE service
of ``cohorts.services`` applies the rules and writes; its ``DomainError`` becomes 409/400/403 JSON in
``api.exceptions``. Numbers the services judge (drip rate, volumes, cell counts, vital signs) are
passed through as sent, so the API answers with the services' own codes (``rate_not_positive``,
``invalid_rate``, ``volume_negative``, ``invalid_cells``…) rather than a generic ``invalid``.

Site staff write; sponsors read, without direct identifiers: participants appear by id and study ID
only, and sponsors do not see vital signs, interruptions or who gave the infusion.

Endpoints: ``infusions/`` (list, retrieve, start), ``infusions/{id}/readings/``, ``…/vitals/``,
``…/interruptions/``, ``…/resume/``, ``…/complete/``, ``…/stop-early/``, ``infusions/hold/?participant=``
(the sentinel or stagger hold now, until when and why).
"""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.fields import (
    MAX_ID,
    PassThroughCountField,
    PassThroughNumberField,
    StaffMemberField,
    StaffTextField,
    TextField,
    id_field,
)
from api.filters import IdFilter, ListFilterBackend, validated_query
from api.permissions import RoleActionPermissions, sees_bedside_detail
from api.schema import by_role, error_responses, sponsor_component
from cohorts import selectors, services
from cohorts.models import (
    DripRateReading,
    Infusion,
    InfusionInterruption,
    Participant,
    VitalSigns,
)
from trial.access import scope_participants


class DripRateReadingSerializer(serializers.ModelSerializer):
    ml_per_hour = serializers.DecimalField(
        max_digits=8, decimal_places=1, read_only=True, help_text="Derived: drops/min × 60 / the set's drop factor."
    )
    deviation = serializers.SerializerMethodField(help_text="Id of the deviation a rate out of range opened.")

    class Meta:
        model = DripRateReading
        fields = (
            "id",
            "observed_at",
            "drops_per_minute",
            "ml_per_hour",
            "out_of_range",
            "rate_min",
            "rate_max",
            "deviation",
            "recorded_at",
        )
        read_only_fields = fields

    def get_deviation(self, obj: DripRateReading) -> int | None:
        deviation = getattr(obj, "deviation", None)
        return deviation.pk if deviation is not None else None


class InterruptionSerializer(serializers.ModelSerializer):
    class Meta:
        model = InfusionInterruption
        fields = ("id", "stopped_at", "restarted_at", "reason")
        read_only_fields = fields


class VitalSignsSerializer(serializers.ModelSerializer):
    class Meta:
        model = VitalSigns
        fields = (
            "id",
            "timepoint",
            "measured_at",
            "systolic_bp",
            "diastolic_bp",
            "heart_rate",
            "temperature_c",
            "spo2_pct",
            "respiratory_rate",
        )
        read_only_fields = fields


@sponsor_component("InfusionSponsor")
class InfusionSponsorSerializer(serializers.ModelSerializer):
    """An infusion as a sponsor reads it: the participant by study ID, the dose, the rate, the times."""

    study_id = serializers.CharField(source="participant.study_id", read_only=True, allow_null=True)
    dose_level = serializers.IntegerField(source="dose_level.level", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    duration_minutes = serializers.DecimalField(max_digits=10, decimal_places=2, read_only=True, allow_null=True)
    average_ml_per_hour = serializers.DecimalField(max_digits=8, decimal_places=1, read_only=True, allow_null=True)
    readings = DripRateReadingSerializer(many=True, read_only=True)
    stop_reason = StaffTextField()

    class Meta:
        model = Infusion
        fields = (
            "id",
            "participant",
            "study_id",
            "cohort",
            "dose_level",
            "sequence",
            "status",
            "status_display",
            "cells_planned",
            "cells_administered",
            "product_lot",
            "product_expiry",
            "started_at",
            "ended_at",
            "duration_minutes",
            "volume_planned_ml",
            "volume_ml",
            "drop_factor",
            "average_ml_per_hour",
            "average_drops_per_minute",
            "average_rate_min",
            "average_rate_max",
            "average_rate_out_of_range",
            "implausible_rate_confirmed",
            "stop_reason",
            "readings",
        )
        read_only_fields = fields


@extend_schema_serializer(component_name="InfusionStaff")
class InfusionSerializer(InfusionSponsorSerializer):
    """An infusion as site staff see it: with vital signs, interruptions, premedication and the nurse."""

    administered_by = StaffMemberField()
    interruptions = InterruptionSerializer(many=True, read_only=True)
    vitals = VitalSignsSerializer(many=True, read_only=True)

    class Meta(InfusionSponsorSerializer.Meta):
        fields = (*InfusionSponsorSerializer.Meta.fields, "premedication", "administered_by", "interruptions", "vitals")
        read_only_fields = fields


class InfusionHoldSerializer(serializers.Serializer):
    participant = serializers.IntegerField()
    study_id = serializers.CharField(allow_null=True)
    on_hold = serializers.BooleanField()
    code = serializers.CharField(allow_null=True, help_text="sentinel_hold or stagger_hold; null when free.")
    message = serializers.CharField(help_text="Why, and until when, in the site's time zone.")
    until = serializers.DateTimeField(allow_null=True, help_text="Null: until an event (see the message).")


class VitalsInputSerializer(serializers.Serializer):
    measured_at = serializers.DateTimeField(required=False)
    systolic_bp = PassThroughNumberField(required=False, allow_null=True, help_text="mmHg")
    diastolic_bp = PassThroughNumberField(required=False, allow_null=True, help_text="mmHg")
    heart_rate = PassThroughNumberField(required=False, allow_null=True, help_text="/min")
    temperature_c = PassThroughNumberField(required=False, allow_null=True, help_text="°C, one decimal")
    spo2_pct = PassThroughNumberField(required=False, allow_null=True, help_text="%")
    respiratory_rate = PassThroughNumberField(required=False, allow_null=True, help_text="/min")


class VitalsRecordSerializer(VitalsInputSerializer):
    timepoint = serializers.ChoiceField(choices=VitalSigns.Timepoint.choices)


class InfusionStartSerializer(serializers.Serializer):
    participant = id_field(Participant.objects.select_related("site", "trial"), help_text="An enrolled participant.")
    started_at = serializers.DateTimeField()
    product_lot = TextField(max_length=60)
    product_expiry = serializers.DateTimeField(help_text="The product may not be started after this moment.")
    cells_planned = PassThroughCountField(required=False, help_text="Default: the cohort's dose level.")
    drop_factor = serializers.IntegerField(
        required=False, min_value=1, max_value=100, help_text="drops/mL of the giving set; default: the trial's."
    )
    volume_ml = PassThroughNumberField(required=False, allow_null=True, help_text="Volume to give (mL).")
    premedication = TextField(required=False, allow_blank=True, max_length=2000, default="")
    vitals_before = VitalsInputSerializer(required=False)


class ReadingCreateSerializer(serializers.Serializer):
    observed_at = serializers.DateTimeField()
    drops_per_minute = PassThroughNumberField(help_text="As counted at the bedside; protocol range 20–25 here.")


class InterruptSerializer(serializers.Serializer):
    stopped_at = serializers.DateTimeField()
    reason = TextField(max_length=2000)


class ResumeSerializer(serializers.Serializer):
    restarted_at = serializers.DateTimeField()


class CompleteSerializer(serializers.Serializer):
    ended_at = serializers.DateTimeField()
    cells_administered = PassThroughCountField()
    volume_ml = PassThroughNumberField(help_text="Volume given (mL).")
    vitals_after = VitalsInputSerializer(required=False)
    confirm_implausible_rate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="True only after a 400 `implausible_average_rate`, when the entry was checked and is right: the "
        "average is then saved, flagged and a major deviation opens.",
    )


class StopEarlySerializer(CompleteSerializer):
    reason = TextField(max_length=2000)


class InfusionFilter(django_filters.FilterSet):
    participant = IdFilter(field_name="participant_id", help_text="Participant id.")
    cohort = IdFilter(field_name="cohort_id", help_text="Cohort id.")
    status = django_filters.ChoiceFilter(choices=Infusion.Status.choices)


class HoldQuerySerializer(serializers.Serializer):
    participant = serializers.IntegerField(min_value=1, max_value=MAX_ID)


def _vitals(data: dict | None) -> dict | None:
    return None if data is None else {k: v for k, v in data.items() if v is not None}


_RULES = (
    "`not_enrolled`, `cohort_paused`, `cohort_not_open`, `trial_stopped`, `already_infused`, `no_consent`, "
    "`product_expired`, `dose_mismatch`, `sentinel_hold`, `stagger_hold`"
)


INFUSION = by_role(name="Infusion", staff=InfusionSerializer, sponsor=InfusionSponsorSerializer)
INFUSION_LIST = by_role(name="Infusion", staff=InfusionSerializer, sponsor=InfusionSponsorSerializer, many=True)


@extend_schema_view(
    list=extend_schema(
        responses={200: INFUSION_LIST, **error_responses(400, 401, 403)},
        description="Infusions with their drip-rate readings (newest first): `InfusionStaff`, or for sponsors "
        "(and roles without bedside detail) `InfusionSponsor`, without vital signs, interruptions, premedication "
        "or the nurse.",
    ),
    retrieve=extend_schema(
        responses={200: INFUSION, **error_responses(401, 403, 404)},
        description="One infusion with its readings: `InfusionStaff` (vitals, interruptions) or `InfusionSponsor`.",
    ),
)
class InfusionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Infusions: started, observed and finished by site staff through the same rules as the admin."""

    permission_classes = [RoleActionPermissions]
    filter_backends = [ListFilterBackend]
    filterset_class = InfusionFilter
    action_perms = {
        "readings": ("cohorts.add_dripratereading",),
        "vitals": ("cohorts.add_vitalsigns",),
        "interruptions": ("cohorts.add_infusioninterruption",),
        "resume": ("cohorts.change_infusioninterruption",),
        "complete": ("cohorts.change_infusion",),
        "stop_early": ("cohorts.change_infusion",),
        "hold": ("cohorts.view_infusion",),
    }

    def get_queryset(self) -> QuerySet[Infusion]:
        return scope_participants(selectors.infusion_list(), self.request.user, participant="participant")

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or sees_bedside_detail(self.request.user):
            return InfusionSerializer
        return InfusionSponsorSerializer

    def _fresh(self, infusion: Infusion, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=infusion.pk)).data, status=code)

    @extend_schema(
        request=InfusionStartSerializer,
        responses={201: InfusionSerializer, **error_responses(400, 401, 403, 409)},
        description=f"Start an infusion (the cohort row is locked: two cannot start at once). Refusals are 409 with "
        f"{_RULES}; malformed values 400 with e.g. `volume_negative`, `invalid_cells`, `date_in_future`.",
    )
    def create(self, request):
        serializer = InfusionStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["vitals_before"] = _vitals(data.get("vitals_before"))
        infusion = services.infusion_start(**data, by=request.user)
        return self._fresh(infusion, status.HTTP_201_CREATED)

    @extend_schema(
        request=ReadingCreateSerializer,
        responses={201: DripRateReadingSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Record a drip rate as observed. Outside the protocol range it is saved with "
        "`out_of_range: true` and a protocol deviation opens (its id in `deviation`). A rate that is not a "
        "positive number is 400 `rate_not_positive` / `invalid_rate`, and nothing is saved.",
    )
    @action(detail=True, methods=["post"])
    def readings(self, request, pk=None):
        infusion = self.get_object()
        serializer = ReadingCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reading = services.drip_rate_record(infusion=infusion, **serializer.validated_data, by=request.user)
        reading = DripRateReading.objects.select_related("infusion", "deviation").get(pk=reading.pk)
        return Response(DripRateReadingSerializer(reading).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=VitalsRecordSerializer, responses={201: VitalSignsSerializer, **error_responses(400, 401, 403, 404)}
    )
    @action(detail=True, methods=["post"])
    def vitals(self, request, pk=None):
        infusion = self.get_object()
        serializer = VitalsRecordSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        timepoint, measured_at = data.pop("timepoint"), data.pop("measured_at", None)
        vitals = services.vital_signs_record(
            infusion=infusion, timepoint=timepoint, values=_vitals(data), measured_at=measured_at, by=request.user
        )
        return Response(VitalSignsSerializer(vitals).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=InterruptSerializer, responses={201: InterruptionSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    @action(detail=True, methods=["post"])
    def interruptions(self, request, pk=None):
        infusion = self.get_object()
        serializer = InterruptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        interruption = services.infusion_interrupt(infusion=infusion, **serializer.validated_data, by=request.user)
        return Response(InterruptionSerializer(interruption).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ResumeSerializer, responses={200: InterruptionSerializer, **error_responses(400, 401, 403, 404, 409)}
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        infusion = self.get_object()
        serializer = ResumeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        interruption = services.infusion_resume(infusion=infusion, **serializer.validated_data, by=request.user)
        return Response(InterruptionSerializer(interruption).data)

    @extend_schema(
        request=CompleteSerializer,
        responses={200: InfusionSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Finish the infusion as given: starts the participant's DLT window and plans her follow-up "
        "visits; cells outside the dose tolerance open a major deviation; the average drip rate (volume × drop "
        "factor ÷ running minutes) outside the protocol range is flagged and opens a deviation (major when faster, "
        "minor when slower); the cohort's last infusion moves it to observing. An average above 10 × the maximum is "
        "400 `implausible_average_rate` unless `confirm_implausible_rate` is true; 0 mL is 400 `volume_not_given`; "
        "a volume given in no running time is 400 `no_running_time`.",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        infusion = self.get_object()
        serializer = CompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["vitals_after"] = _vitals(data.get("vitals_after"))
        return self._fresh(services.infusion_complete(infusion=infusion, **data, by=request.user))

    @extend_schema(
        request=StopEarlySerializer,
        responses={200: InfusionSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Stop the infusion before the product is given in full (with the reason and what was given). "
        "The same checks as `complete/`, except that 0 mL (nothing given: no average rate) is accepted.",
    )
    @action(detail=True, methods=["post"], url_path="stop-early")
    def stop_early(self, request, pk=None):
        infusion = self.get_object()
        serializer = StopEarlySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["vitals_after"] = _vitals(data.get("vitals_after"))
        return self._fresh(services.infusion_stop_early(infusion=infusion, **data, by=request.user))

    @extend_schema(
        parameters=[HoldQuerySerializer],
        responses={200: InfusionHoldSerializer, **error_responses(400, 401, 403, 404)},
        description="Whether the sentinel or stagger hold keeps this participant from being infused now, why, "
        "and until when.",
    )
    @action(detail=False, methods=["get"])
    def hold(self, request):
        wanted = validated_query(HoldQuerySerializer, request)
        participants = scope_participants(Participant.objects.select_related("site"), request.user)
        participant = participants.filter(pk=wanted["participant"]).first()
        if participant is None:
            raise NotFound("No such participant.")
        hold = selectors.infusion_hold(participant=participant)
        body = {
            "participant": participant.pk,
            "study_id": participant.study_id,
            "on_hold": hold is not None,
            "code": hold.code if hold else None,
            "message": hold.message if hold else "No sentinel or stagger hold.",
            "until": hold.until if hold else None,
        }
        return Response(InfusionHoldSerializer(body).data)
