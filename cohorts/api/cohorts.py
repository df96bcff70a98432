"""REST API for cohorts and enrollment, and opening a trial's first cohort."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from api.fields import id_field
from api.permissions import PermsRequired, RoleActionPermissions
from api.schema import error_responses
from api.serializers import DoseLevelSerializer
from cohorts import selectors, services
from cohorts.models import (
    Cohort,
    Enrollment,
    Participant,
)
from trial.access import scope_participants, scope_trials
from trial.models import Trial

# --- serializers: cohorts and enrollment ---------------------------------------------------------


class CohortSerializer(serializers.ModelSerializer):
    trial = serializers.CharField(source="trial.registry_id", read_only=True)
    dose_level = DoseLevelSerializer(read_only=True)
    state_display = serializers.CharField(source="get_state_display", read_only=True)
    enrolled = serializers.IntegerField(source="enrolled_count", read_only=True)
    next_step = serializers.SerializerMethodField()

    class Meta:
        model = Cohort
        fields = (
            "id",
            "trial",
            "sequence",
            "dose_level",
            "state",
            "state_display",
            "capacity",
            "enrolled",
            "next_step",
            "opened_at",
            "closed_at",
            "decision",
        )
        read_only_fields = fields

    def get_next_step(self, obj: Cohort) -> str:
        return selectors.cohort_next_step(obj, obj.enrolled_count)


class EnrollmentSerializer(serializers.ModelSerializer):
    participant = serializers.IntegerField(source="participant_id", read_only=True)
    study_id = serializers.CharField(source="participant.study_id", read_only=True, allow_null=True)

    class Meta:
        model = Enrollment
        fields = ("id", "cohort", "participant", "study_id", "slot", "is_sentinel", "enrolled_at")
        read_only_fields = fields


class EnrollRequestSerializer(serializers.Serializer):
    participant = id_field(Participant.objects.all(), help_text="Id of an eligible, consented participant.")


class CohortViewSet(viewsets.ReadOnlyModelViewSet):
    """Cohorts in order, with dose level, state, capacity, enrolled count and the next step."""

    serializer_class = CohortSerializer
    permission_classes = [RoleActionPermissions]
    action_perms = {
        "enrollments": ("cohorts.view_enrollment",),
        "enroll": ("cohorts.add_enrollment",),
    }

    def get_queryset(self) -> QuerySet[Cohort]:
        return scope_trials(selectors.cohort_list(), self.request.user)

    @extend_schema(responses={200: EnrollmentSerializer(many=True), **error_responses(401, 403, 404)})
    @action(detail=True, methods=["get"])
    def enrollments(self, request, pk=None):
        """The cohort's enrollments by slot."""
        cohort = self.get_object()
        enrollments = Enrollment.objects.filter(cohort=cohort).select_related("participant").order_by("slot")
        enrollments = scope_participants(enrollments, request.user, participant="participant")
        page = self.paginate_queryset(enrollments)
        return self.get_paginated_response(EnrollmentSerializer(page, many=True).data)

    @extend_schema(
        request=EnrollRequestSerializer,
        responses={201: EnrollmentSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Enroll an eligible, consented participant: race-free (the cohort row is locked). Refusals "
        "are 409 with `cohort_full`, `cohort_not_open`, `cohort_paused`, `not_eligible`, `judgment_pending`, "
        "`no_consent`, `already_enrolled`, `wrong_trial` or `trial_stopped`.",
    )
    @enrollments.mapping.post
    def enroll(self, request, pk=None):
        cohort = self.get_object()
        serializer = EnrollRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enrollment = services.enroll_participant(
            participant=serializer.validated_data["participant"], cohort=cohort, by=request.user
        )
        return Response(EnrollmentSerializer(enrollment).data, status=status.HTTP_201_CREATED)


class OpenFirstCohortView(GenericAPIView):
    """Open a trial's first cohort at its lowest dose level (investigators). Later cohorts open only
    through an effective escalation decision of the safety review committee."""

    serializer_class = CohortSerializer
    permission_classes = [PermsRequired]
    required_perms = ("cohorts.open_first_cohort",)

    @extend_schema(request=None, responses={201: CohortSerializer, **error_responses(401, 403, 404, 409)})
    def post(self, request, registry_id: str):
        # A NUL byte never reaches the database (PostgreSQL refuses it in text): no such trial.
        trials = scope_trials(Trial.objects.all(), request.user, trial="pk")
        trial = None if "\x00" in registry_id else trials.filter(registry_id=registry_id).first()
        if trial is None:
            raise NotFound("No trial with this registry ID.")
        cohort = services.cohort_open_first(trial=trial, by=request.user)
        return Response(
            self.get_serializer(selectors.cohort_list().get(pk=cohort.pk)).data, status=status.HTTP_201_CREATED
        )
