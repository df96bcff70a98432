"""REST API for follow-up visits (``visits/``: done or missed) and protocol deviations (``deviations/``:
recorded by staff or opened by the automatic checks; PATCH to assess or close)."""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.fields import StaffTextField, TextField, id_field
from api.filters import IdFilter, ListFilterBackend
from api.permissions import RoleActionPermissions
from api.schema import error_responses
from cohorts import selectors, services
from cohorts.models import (
    FollowUpVisit,
    Infusion,
    Participant,
    ProtocolDeviation,
)
from trial.access import scope_participants


class FollowUpVisitSerializer(serializers.ModelSerializer):
    study_id = serializers.CharField(source="participant.study_id", read_only=True, allow_null=True)
    cohort = serializers.IntegerField(source="infusion.cohort_id", read_only=True)
    out_of_window = serializers.BooleanField(read_only=True)
    missed_reason = StaffTextField()

    class Meta:
        model = FollowUpVisit
        fields = (
            "id",
            "participant",
            "study_id",
            "cohort",
            "infusion",
            "code",
            "name",
            "day_offset",
            "target_date",
            "window_start",
            "window_end",
            "status",
            "done_on",
            "out_of_window",
            "missed_reason",
            "missed_automatically",
            "recorded_at",
        )
        read_only_fields = fields


class ProtocolDeviationSerializer(serializers.ModelSerializer):
    study_id = serializers.CharField(source="participant.study_id", read_only=True, allow_null=True)
    trial = serializers.CharField(source="trial.registry_id", read_only=True)
    description = StaffTextField()
    corrective_action = StaffTextField()

    class Meta:
        model = ProtocolDeviation
        fields = (
            "id",
            "trial",
            "participant",
            "study_id",
            "category",
            "severity",
            "description",
            "source",
            "occurred_on",
            "detected_at",
            "corrective_action",
            "status",
            "closed_at",
            "infusion",
            "drip_rate_reading",
            "visit",
        )
        read_only_fields = fields


class VisitCompleteSerializer(serializers.Serializer):
    on = serializers.DateField(help_text="The site's date the visit was done.")


class VisitMissSerializer(serializers.Serializer):
    reason = TextField(max_length=2000)


class DeviationCreateSerializer(serializers.Serializer):
    participant = id_field(Participant.objects.select_related("site"))
    category = serializers.ChoiceField(choices=ProtocolDeviation.Category.choices)
    severity = serializers.ChoiceField(choices=ProtocolDeviation.Severity.choices)
    description = TextField(max_length=5000)
    occurred_on = serializers.DateField()
    corrective_action = TextField(required=False, allow_blank=True, max_length=5000, default="")
    infusion = id_field(Infusion.objects.all(), required=False, allow_null=True, default=None)
    visit = id_field(FollowUpVisit.objects.all(), required=False, allow_null=True, default=None)


class DeviationUpdateSerializer(serializers.Serializer):
    reason = TextField(max_length=2000, help_text="Reason for the change (kept in the audit trail).")
    severity = serializers.ChoiceField(choices=ProtocolDeviation.Severity.choices, required=False)
    description = TextField(max_length=5000, required=False)
    corrective_action = TextField(max_length=5000, required=False, allow_blank=True)
    close = serializers.BooleanField(required=False, default=False, help_text="Close (needs a corrective action).")


class VisitFilter(django_filters.FilterSet):
    participant = IdFilter(field_name="participant_id", help_text="Participant id.")
    cohort = IdFilter(field_name="infusion__cohort_id", help_text="Cohort id.")
    status = django_filters.ChoiceFilter(choices=FollowUpVisit.Status.choices)
    target_from = django_filters.DateFilter(
        field_name="target_date", lookup_expr="gte", help_text="Target date on or after."
    )
    target_to = django_filters.DateFilter(
        field_name="target_date", lookup_expr="lte", help_text="Target date on or before."
    )


class DeviationFilter(django_filters.FilterSet):
    participant = IdFilter(field_name="participant_id", help_text="Participant id.")
    cohort = IdFilter(field_name="participant__enrollments__cohort_id", help_text="Cohort id.")
    category = django_filters.ChoiceFilter(choices=ProtocolDeviation.Category.choices)
    severity = django_filters.ChoiceFilter(choices=ProtocolDeviation.Severity.choices)
    status = django_filters.ChoiceFilter(choices=ProtocolDeviation.Status.choices)
    source = django_filters.ChoiceFilter(choices=ProtocolDeviation.Source.choices)


@extend_schema_view(
    list=extend_schema(description="Follow-up visits by target date."),
)
class FollowUpVisitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Follow-up visits planned from each infusion day by the protocol's schedule."""

    serializer_class = FollowUpVisitSerializer
    permission_classes = [RoleActionPermissions]
    filter_backends = [ListFilterBackend]
    filterset_class = VisitFilter
    action_perms = {"complete": ("cohorts.change_followupvisit",), "miss": ("cohorts.change_followupvisit",)}

    def get_queryset(self) -> QuerySet[FollowUpVisit]:
        return scope_participants(selectors.followup_visit_list(), self.request.user, participant="participant")

    def _fresh(self, visit: FollowUpVisit) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=visit.pk)).data)

    @extend_schema(
        request=VisitCompleteSerializer,
        responses={200: FollowUpVisitSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Record the visit as done. Outside its window it is recorded and a minor deviation opens.",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        visit = self.get_object()
        serializer = VisitCompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._fresh(services.visit_complete(visit=visit, **serializer.validated_data, by=request.user))

    @extend_schema(
        request=VisitMissSerializer,
        responses={200: FollowUpVisitSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def miss(self, request, pk=None):
        visit = self.get_object()
        serializer = VisitMissSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._fresh(services.visit_miss(visit=visit, **serializer.validated_data, by=request.user))


@extend_schema_view(
    list=extend_schema(description="Protocol deviations, newest first."),
)
class ProtocolDeviationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Protocol deviations: opened by the automatic checks or recorded by staff; assessed and closed by staff."""

    serializer_class = ProtocolDeviationSerializer
    permission_classes = [RoleActionPermissions]
    filter_backends = [ListFilterBackend]
    filterset_class = DeviationFilter

    def get_queryset(self) -> QuerySet[ProtocolDeviation]:
        return scope_participants(selectors.deviation_list(), self.request.user, participant="participant")

    def _fresh(self, deviation: ProtocolDeviation, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=deviation.pk)).data, status=code)

    @extend_schema(
        request=DeviationCreateSerializer,
        responses={201: ProtocolDeviationSerializer, **error_responses(400, 401, 403)},
    )
    def create(self, request):
        serializer = DeviationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deviation = services.deviation_record(**serializer.validated_data, by=request.user)
        return self._fresh(deviation, status.HTTP_201_CREATED)

    @extend_schema(
        request=DeviationUpdateSerializer,
        responses={200: ProtocolDeviationSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Assess, correct or close (`close: true`, needs a corrective action) with a reason. A closed "
        "deviation is final (409 `deviation_closed`).",
    )
    def partial_update(self, request, pk=None):
        deviation = self.get_object()
        serializer = DeviationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._fresh(services.deviation_update(deviation=deviation, **serializer.validated_data, by=request.user))
