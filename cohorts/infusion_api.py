"""REST API for infusions, drip-rate readings, follow-up visits and protocol deviations (``/api/v1/``).

Same shape as ``cohorts.api``: a serializer checks the request's shape, then ONE service of
``cohorts.services`` applies the rules and writes; its ``DomainError`` becomes 409/400/403 JSON in
``api.exceptions``. Numbers the services judge (drip rate, volumes, cell counts, vital signs) are
passed through as sent, so the API answers with the services' own codes (``rate_not_positive``,
``invalid_rate``, ``volume_negative``, ``invalid_cells``…) rather than a generic ``invalid``.

Site staff write; sponsors read, without direct identifiers: participants appear by id and study ID
only, and sponsors do not see vital signs, interruptions or who gave the infusion.

Endpoints (router below): ``infusions/`` (list, retrieve, start), ``infusions/{id}/readings/``,
``…/vitals/``, ``…/interruptions/``, ``…/resume/``, ``…/complete/``, ``…/stop-early/``,
``infusions/hold/?participant=`` (the sentinel or stagger hold now, until when and why), ``visits/``
(list, retrieve), ``visits/{id}/complete/``, ``visits/{id}/miss/``, ``deviations/`` (list, retrieve,
record, PATCH to assess or close).
"""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from cohorts import selectors, services
from cohorts.api import MAX_ID, RoleActionPermissions, _errors, _id_field
from cohorts.models import (
    DripRateReading,
    FollowUpVisit,
    Infusion,
    InfusionInterruption,
    Participant,
    ProtocolDeviation,
    VitalSigns,
)
from core.roles import SPONSOR

# --- fields --------------------------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string", "format": "decimal"}]})
class PassThroughNumberField(serializers.Field):
    """A number as sent (JSON number or decimal string): the service parses it and names what is wrong."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return str(value)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 0})
class PassThroughCountField(serializers.Field):
    """An exact count (e.g. cells) as sent; the service refuses anything that is not a whole number."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


def _sees_identifying_detail(user) -> bool:
    """Staff see vital signs, interruptions and who gave the infusion; sponsors never do."""
    return user.has_perm("cohorts.view_vitalsigns") and not user.groups.filter(name=SPONSOR).exists()


# --- serializers: output -------------------------------------------------------------------------


class DripRateReadingSerializer(serializers.ModelSerializer):
    ml_per_hour = serializers.DecimalField(max_digits=8, decimal_places=1, read_only=True,
                                           help_text="Derived: drops/min × 60 / the set's drop factor.")  # fmt: skip
    deviation = serializers.SerializerMethodField(help_text="Id of the deviation a rate out of range opened.")

    class Meta:
        model = DripRateReading
        fields = ("id", "observed_at", "drops_per_minute", "ml_per_hour", "out_of_range", "rate_min", "rate_max",
                  "deviation", "recorded_at")  # fmt: skip
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
        fields = ("id", "timepoint", "measured_at", "systolic_bp", "diastolic_bp", "heart_rate", "temperature_c",
                  "spo2_pct", "respiratory_rate")  # fmt: skip
        read_only_fields = fields


class InfusionSponsorSerializer(serializers.ModelSerializer):
    """An infusion as a sponsor reads it: the participant by study ID, the dose, the rate, the times."""

    study_id = serializers.CharField(source="participant.study_id", read_only=True)
    dose_level = serializers.IntegerField(source="dose_level.level", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    duration_minutes = serializers.DecimalField(max_digits=10, decimal_places=2, read_only=True, allow_null=True)
    average_ml_per_hour = serializers.DecimalField(max_digits=8, decimal_places=1, read_only=True, allow_null=True)
    readings = DripRateReadingSerializer(many=True, read_only=True)

    class Meta:
        model = Infusion
        fields = (
            "id", "participant", "study_id", "cohort", "dose_level", "sequence", "status", "status_display",
            "cells_planned", "cells_administered", "product_lot", "product_expiry", "started_at", "ended_at",
            "duration_minutes", "volume_planned_ml", "volume_ml", "drop_factor", "average_ml_per_hour",
            "average_drops_per_minute", "average_rate_min", "average_rate_max", "average_rate_out_of_range",
            "implausible_rate_confirmed", "stop_reason", "readings",
        )  # fmt: skip
        read_only_fields = fields


class InfusionSerializer(InfusionSponsorSerializer):
    """An infusion as site staff see it: with vital signs, interruptions, premedication and the nurse."""

    administered_by = serializers.CharField(source="administered_by.username", read_only=True)
    interruptions = InterruptionSerializer(many=True, read_only=True)
    vitals = VitalSignsSerializer(many=True, read_only=True)

    class Meta(InfusionSponsorSerializer.Meta):
        fields = (*InfusionSponsorSerializer.Meta.fields, "premedication", "administered_by", "interruptions",
                  "vitals")  # fmt: skip
        read_only_fields = fields


class FollowUpVisitSerializer(serializers.ModelSerializer):
    study_id = serializers.CharField(source="participant.study_id", read_only=True)
    cohort = serializers.IntegerField(source="infusion.cohort_id", read_only=True)
    out_of_window = serializers.BooleanField(read_only=True)

    class Meta:
        model = FollowUpVisit
        fields = ("id", "participant", "study_id", "cohort", "infusion", "code", "name", "day_offset", "target_date",
                  "window_start", "window_end", "status", "done_on", "out_of_window", "missed_reason",
                  "recorded_at")  # fmt: skip
        read_only_fields = fields


class ProtocolDeviationSerializer(serializers.ModelSerializer):
    study_id = serializers.CharField(source="participant.study_id", read_only=True)
    trial = serializers.CharField(source="trial.registry_id", read_only=True)

    class Meta:
        model = ProtocolDeviation
        fields = ("id", "trial", "participant", "study_id", "category", "severity", "description", "source",
                  "occurred_on", "detected_at", "corrective_action", "status", "closed_at", "infusion",
                  "drip_rate_reading", "visit")  # fmt: skip
        read_only_fields = fields


class InfusionHoldSerializer(serializers.Serializer):
    participant = serializers.IntegerField()
    study_id = serializers.CharField(allow_null=True)
    on_hold = serializers.BooleanField()
    code = serializers.CharField(allow_null=True, help_text="sentinel_hold or stagger_hold; null when free.")
    message = serializers.CharField(help_text="Why, and until when, in the site's time zone.")
    until = serializers.DateTimeField(allow_null=True, help_text="Null: until an event (see the message).")


# --- serializers: input --------------------------------------------------------------------------


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
    participant = _id_field(Participant.objects.select_related("site", "trial"), help_text="An enrolled participant.")
    started_at = serializers.DateTimeField()
    product_lot = serializers.CharField(max_length=60)
    product_expiry = serializers.DateTimeField(help_text="The product may not be started after this moment.")
    cells_planned = PassThroughCountField(required=False, help_text="Default: the cohort's dose level.")
    drop_factor = serializers.IntegerField(required=False, min_value=1, max_value=100,
                                           help_text="drops/mL of the giving set; default: the trial's.")  # fmt: skip
    volume_ml = PassThroughNumberField(required=False, allow_null=True, help_text="Volume to give (mL).")
    premedication = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    vitals_before = VitalsInputSerializer(required=False)


class ReadingCreateSerializer(serializers.Serializer):
    observed_at = serializers.DateTimeField()
    drops_per_minute = PassThroughNumberField(help_text="As counted at the bedside; protocol range 20–25 here.")


class InterruptSerializer(serializers.Serializer):
    stopped_at = serializers.DateTimeField()
    reason = serializers.CharField(max_length=2000)


class ResumeSerializer(serializers.Serializer):
    restarted_at = serializers.DateTimeField()


class CompleteSerializer(serializers.Serializer):
    ended_at = serializers.DateTimeField()
    cells_administered = PassThroughCountField()
    volume_ml = PassThroughNumberField(help_text="Volume given (mL).")
    vitals_after = VitalsInputSerializer(required=False)
    confirm_implausible_rate = serializers.BooleanField(
        required=False, default=False,
        help_text="True only after a 400 `implausible_average_rate`, when the entry was checked and is right: the "
        "average is then saved, flagged and a major deviation opens.",
    )  # fmt: skip


class StopEarlySerializer(CompleteSerializer):
    reason = serializers.CharField(max_length=2000)


class VisitCompleteSerializer(serializers.Serializer):
    on = serializers.DateField(help_text="The site's date the visit was done.")


class VisitMissSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DeviationCreateSerializer(serializers.Serializer):
    participant = _id_field(Participant.objects.select_related("site"))
    category = serializers.ChoiceField(choices=ProtocolDeviation.Category.choices)
    severity = serializers.ChoiceField(choices=ProtocolDeviation.Severity.choices)
    description = serializers.CharField(max_length=5000)
    occurred_on = serializers.DateField()
    corrective_action = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    infusion = _id_field(Infusion.objects.all(), required=False, allow_null=True, default=None)
    visit = _id_field(FollowUpVisit.objects.all(), required=False, allow_null=True, default=None)


class DeviationUpdateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Reason for the change (kept in the audit trail).")
    severity = serializers.ChoiceField(choices=ProtocolDeviation.Severity.choices, required=False)
    description = serializers.CharField(max_length=5000, required=False)
    corrective_action = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    close = serializers.BooleanField(required=False, default=False, help_text="Close (needs a corrective action).")


# --- filters -------------------------------------------------------------------------------------


class InfusionFilterSerializer(serializers.Serializer):
    participant = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    cohort = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    status = serializers.ChoiceField(choices=Infusion.Status.choices, required=False)


class HoldQuerySerializer(serializers.Serializer):
    participant = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class VisitFilterSerializer(serializers.Serializer):
    participant = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    cohort = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    status = serializers.ChoiceField(choices=FollowUpVisit.Status.choices, required=False)
    target_from = serializers.DateField(required=False, help_text="Target date on or after.")
    target_to = serializers.DateField(required=False, help_text="Target date on or before.")


class DeviationFilterSerializer(serializers.Serializer):
    participant = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    cohort = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    category = serializers.ChoiceField(choices=ProtocolDeviation.Category.choices, required=False)
    severity = serializers.ChoiceField(choices=ProtocolDeviation.Severity.choices, required=False)
    status = serializers.ChoiceField(choices=ProtocolDeviation.Status.choices, required=False)
    source = serializers.ChoiceField(choices=ProtocolDeviation.Source.choices, required=False)


def _filters(serializer_class, request) -> dict:
    filters = serializer_class(data=request.query_params)
    filters.is_valid(raise_exception=True)
    return filters.validated_data


def _vitals(data: dict | None) -> dict | None:
    return None if data is None else {k: v for k, v in data.items() if v is not None}


# --- views ---------------------------------------------------------------------------------------

_RULES = ("`not_enrolled`, `cohort_paused`, `cohort_not_open`, `trial_stopped`, `already_infused`, `no_consent`, "
          "`product_expired`, `dose_mismatch`, `sentinel_hold`, `stagger_hold`")  # fmt: skip


@extend_schema_view(
    list=extend_schema(parameters=[InfusionFilterSerializer], description="Infusions with their drip-rate readings "
                       "(newest first). Sponsors get them without vital signs, interruptions or the nurse."),
    retrieve=extend_schema(description="One infusion with its readings (and, for staff, vitals and interruptions)."),
)  # fmt: skip
class InfusionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Infusions: started, observed and finished by site staff through the same rules as the admin."""

    permission_classes = [RoleActionPermissions]
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
        return selectors.infusion_list()

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or _sees_identifying_detail(self.request.user):
            return InfusionSerializer
        return InfusionSponsorSerializer

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        wanted = _filters(InfusionFilterSerializer, self.request)
        if "participant" in wanted:
            queryset = queryset.filter(participant_id=wanted["participant"])
        if "cohort" in wanted:
            queryset = queryset.filter(cohort_id=wanted["cohort"])
        if "status" in wanted:
            queryset = queryset.filter(status=wanted["status"])
        return queryset

    def _fresh(self, infusion: Infusion, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=infusion.pk)).data, status=code)

    @extend_schema(
        request=InfusionStartSerializer,
        responses={201: InfusionSerializer, **_errors(400, 401, 403, 409)},
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
        responses={201: DripRateReadingSerializer, **_errors(400, 401, 403, 404, 409)},
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

    @extend_schema(request=VitalsRecordSerializer, responses={201: VitalSignsSerializer, **_errors(400, 401, 403, 404)})
    @action(detail=True, methods=["post"])
    def vitals(self, request, pk=None):
        infusion = self.get_object()
        serializer = VitalsRecordSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        timepoint, measured_at = data.pop("timepoint"), data.pop("measured_at", None)
        vitals = services.vital_signs_record(infusion=infusion, timepoint=timepoint, values=_vitals(data),
                                             measured_at=measured_at, by=request.user)  # fmt: skip
        return Response(VitalSignsSerializer(vitals).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=InterruptSerializer,
                   responses={201: InterruptionSerializer, **_errors(400, 401, 403, 404, 409)})  # fmt: skip
    @action(detail=True, methods=["post"])
    def interruptions(self, request, pk=None):
        infusion = self.get_object()
        serializer = InterruptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        interruption = services.infusion_interrupt(infusion=infusion, **serializer.validated_data, by=request.user)
        return Response(InterruptionSerializer(interruption).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResumeSerializer,
                   responses={200: InterruptionSerializer, **_errors(400, 401, 403, 404, 409)})  # fmt: skip
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        infusion = self.get_object()
        serializer = ResumeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        interruption = services.infusion_resume(infusion=infusion, **serializer.validated_data, by=request.user)
        return Response(InterruptionSerializer(interruption).data)

    @extend_schema(
        request=CompleteSerializer,
        responses={200: InfusionSerializer, **_errors(400, 401, 403, 404, 409)},
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
        responses={200: InfusionSerializer, **_errors(400, 401, 403, 404, 409)},
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
        responses={200: InfusionHoldSerializer, **_errors(400, 401, 403, 404)},
        description="Whether the sentinel or stagger hold keeps this participant from being infused now, why, "
        "and until when.",
    )
    @action(detail=False, methods=["get"])
    def hold(self, request):
        wanted = _filters(HoldQuerySerializer, request)
        participant = Participant.objects.select_related("site").filter(pk=wanted["participant"]).first()
        if participant is None:
            raise NotFound("No such participant.")
        hold = selectors.infusion_hold(participant=participant)
        body = {
            "participant": participant.pk, "study_id": participant.study_id, "on_hold": hold is not None,
            "code": hold.code if hold else None, "message": hold.message if hold else "No sentinel or stagger hold.",
            "until": hold.until if hold else None,
        }  # fmt: skip
        return Response(InfusionHoldSerializer(body).data)


@extend_schema_view(
    list=extend_schema(parameters=[VisitFilterSerializer], description="Follow-up visits by target date."),
)
class FollowUpVisitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Follow-up visits planned from each infusion day by the protocol's schedule."""

    serializer_class = FollowUpVisitSerializer
    permission_classes = [RoleActionPermissions]
    action_perms = {"complete": ("cohorts.change_followupvisit",), "miss": ("cohorts.change_followupvisit",)}

    def get_queryset(self) -> QuerySet[FollowUpVisit]:
        return selectors.followup_visit_list()

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        wanted = _filters(VisitFilterSerializer, self.request)
        if "participant" in wanted:
            queryset = queryset.filter(participant_id=wanted["participant"])
        if "cohort" in wanted:
            queryset = queryset.filter(infusion__cohort_id=wanted["cohort"])
        if "status" in wanted:
            queryset = queryset.filter(status=wanted["status"])
        if "target_from" in wanted:
            queryset = queryset.filter(target_date__gte=wanted["target_from"])
        if "target_to" in wanted:
            queryset = queryset.filter(target_date__lte=wanted["target_to"])
        return queryset

    def _fresh(self, visit: FollowUpVisit) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=visit.pk)).data)

    @extend_schema(
        request=VisitCompleteSerializer,
        responses={200: FollowUpVisitSerializer, **_errors(400, 401, 403, 404, 409)},
        description="Record the visit as done. Outside its window it is recorded and a minor deviation opens.",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        visit = self.get_object()
        serializer = VisitCompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._fresh(services.visit_complete(visit=visit, **serializer.validated_data, by=request.user))

    @extend_schema(request=VisitMissSerializer, responses={200: FollowUpVisitSerializer,
                                                           **_errors(400, 401, 403, 404, 409)})  # fmt: skip
    @action(detail=True, methods=["post"])
    def miss(self, request, pk=None):
        visit = self.get_object()
        serializer = VisitMissSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._fresh(services.visit_miss(visit=visit, **serializer.validated_data, by=request.user))


@extend_schema_view(
    list=extend_schema(parameters=[DeviationFilterSerializer], description="Protocol deviations, newest first."),
)
class ProtocolDeviationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Protocol deviations: opened by the automatic checks or recorded by staff; assessed and closed by staff."""

    serializer_class = ProtocolDeviationSerializer
    permission_classes = [RoleActionPermissions]

    def get_queryset(self) -> QuerySet[ProtocolDeviation]:
        return selectors.deviation_list()

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        wanted = _filters(DeviationFilterSerializer, self.request)
        if "participant" in wanted:
            queryset = queryset.filter(participant_id=wanted["participant"])
        if "cohort" in wanted:
            queryset = queryset.filter(participant__enrollments__cohort_id=wanted["cohort"])
        for name in ("category", "severity", "status", "source"):
            if name in wanted:
                queryset = queryset.filter(**{name: wanted[name]})
        return queryset

    def _fresh(self, deviation: ProtocolDeviation, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=deviation.pk)).data, status=code)

    @extend_schema(request=DeviationCreateSerializer,
                   responses={201: ProtocolDeviationSerializer, **_errors(400, 401, 403)})  # fmt: skip
    def create(self, request):
        serializer = DeviationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deviation = services.deviation_record(**serializer.validated_data, by=request.user)
        return self._fresh(deviation, status.HTTP_201_CREATED)

    @extend_schema(
        request=DeviationUpdateSerializer,
        responses={200: ProtocolDeviationSerializer, **_errors(400, 401, 403, 404, 409)},
        description="Assess, correct or close (`close: true`, needs a corrective action) with a reason. A closed "
        "deviation is final (409 `deviation_closed`).",
    )
    def partial_update(self, request, pk=None):
        deviation = self.get_object()
        serializer = DeviationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._fresh(services.deviation_update(deviation=deviation, **serializer.validated_data,
                                                     by=request.user))  # fmt: skip


# The router ``api/urls.py`` appends to its urlpatterns (under /api/v1/).
router = SimpleRouter()
router.register("infusions", InfusionViewSet, basename="infusion")
router.register("visits", FollowUpVisitViewSet, basename="followupvisit")
router.register("deviations", ProtocolDeviationViewSet, basename="deviation")
