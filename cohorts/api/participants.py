"""REST API for participants and their screening (``/api/v1/participants/``).

Views are thin: a serializer checks the request's shape (a malformed request is a 400 with field
messages before anything is written), then ONE service in ``cohorts.services`` does the work and
the permission, state and safety checks; its ``DomainError`` becomes 409/400/403 JSON in
``api.exceptions``. Reads come from ``cohorts.selectors`` with their joins, so lists take a constant
number of queries.

Sponsors (and any user who may not change participants) get ``ParticipantPseudonymSerializer``:
participants are known by study ID, never by initials, birth date or the site's screening number. The
schema names the two shapes ``ParticipantStaff`` and ``ParticipantSponsor`` (a read answers one of them).
"""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.fields import TextField, id_field
from api.filters import IdFilter, ListFilterBackend, RegistryIdFilter
from api.permissions import RoleActionPermissions, sees_direct_identifiers
from api.schema import by_role, error_responses, sponsor_component
from api.serializers import InputModelSerializer
from cohorts import selectors, services
from cohorts.models import (
    Enrollment,
    Fracture,
    GilbertSyndromeDiagnosis,
    JudgmentConfirmation,
    Participant,
    ScreeningRecord,
)
from trial.access import scope_participants
from trial.models import Site, Trial

# --- serializers: participants and screening -----------------------------------------------------


@sponsor_component("ParticipantSponsor")
class ParticipantPseudonymSerializer(serializers.ModelSerializer):
    """A participant without direct identifiers (what sponsors read): known by study ID."""

    trial = serializers.CharField(source="trial.registry_id", read_only=True)
    screening_verdict = serializers.SerializerMethodField()
    cohort = serializers.SerializerMethodField()
    dose_level = serializers.SerializerMethodField()

    class Meta:
        model = Participant
        fields = (
            "id",
            "trial",
            "site",
            "study_id",
            "sex",
            "status",
            "screening_verdict",
            "cohort",
            "dose_level",
            "withdrawn_on",
            "replaced",
            "created_at",
        )
        read_only_fields = fields

    @staticmethod
    def _enrollment(obj: Participant) -> Enrollment | None:
        enrollments = obj.enrollments.all()  # prefetched by selectors.participant_list
        return enrollments[0] if enrollments else None

    def get_screening_verdict(self, obj: Participant) -> str | None:
        screening = getattr(obj, "screening", None)
        return screening.verdict if screening is not None else None

    def get_cohort(self, obj: Participant) -> int | None:
        enrollment = self._enrollment(obj)
        return enrollment.cohort_id if enrollment else None

    def get_dose_level(self, obj: Participant) -> int | None:
        enrollment = self._enrollment(obj)
        return enrollment.cohort.dose_level.level if enrollment else None


@extend_schema_serializer(component_name="ParticipantStaff")
class ParticipantSerializer(ParticipantPseudonymSerializer):
    """A participant as site staff see it, identifiers included."""

    class Meta(ParticipantPseudonymSerializer.Meta):
        fields = (
            "id",
            "trial",
            "site",
            "screening_number",
            "study_id",
            "initials",
            "date_of_birth",
            "sex",
            "status",
            "screening_verdict",
            "cohort",
            "dose_level",
            "withdrawn_on",
            "withdrawal_reason",
            "replaced",
            "replacement_reason",
            "created_at",
        )
        read_only_fields = fields


class ParticipantCreateSerializer(serializers.Serializer):
    trial = TextField(max_length=32, help_text="Registry ID of the trial, e.g. NCT06949137.")
    site = id_field(Site.objects.all())
    screening_number = TextField(max_length=32)
    date_of_birth = serializers.DateField()
    sex = serializers.ChoiceField(choices=Participant.Sex.choices)
    initials = TextField(max_length=8, required=False, allow_blank=True, default="")

    def validate_trial(self, value: str) -> Trial:
        trial = Trial.objects.filter(registry_id=value).first()
        if trial is None:
            raise serializers.ValidationError(f"No trial {value}.")
        return trial


class ParticipantFilter(django_filters.FilterSet):
    trial = RegistryIdFilter("trial__registry_id")
    cohort = IdFilter(field_name="enrollments__cohort_id", help_text="Cohort id.")
    status = django_filters.ChoiceFilter(choices=Participant.Status.choices)


class FractureSerializer(InputModelSerializer):
    class Meta:
        model = Fracture
        fields = ("date", "site", "on_anti_osteoporosis_treatment", "fragility")


class ScreeningSerializer(InputModelSerializer):
    """Screening data. ``fractures`` (optional) replaces the fracture list; omitted, it stays as it is.

    ``reason`` is required when changing a record that exists (the audit trail keeps it).
    """

    fractures = FractureSerializer(many=True, required=False)
    reason = TextField(
        write_only=True,
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Reason for change; required when the screening record already exists.",
    )

    class Meta:
        model = ScreeningRecord
        fields = ("id", *services.SCREENING_FIELDS, "fractures", "reason", "verdict", "evaluated_at")
        read_only_fields = ("id", "verdict", "evaluated_at")


class CriterionResultSerializer(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.ChoiceField(choices=["inclusion", "exclusion"])
    verdict = serializers.ChoiceField(choices=["met", "not_met", "needs_judgment", "missing"])
    reason = serializers.CharField()
    judgment_applied = serializers.BooleanField()


class EligibilitySerializer(serializers.Serializer):
    participant = serializers.IntegerField()
    eligible = serializers.BooleanField()
    unmet = serializers.ListField(child=serializers.CharField(), help_text="Criteria failed (consent aside).")
    missing = serializers.ListField(child=serializers.CharField(), help_text="Criteria lacking data.")
    pending_judgment = serializers.ListField(child=serializers.CharField(), help_text="Awaiting an investigator.")
    consent_missing = serializers.BooleanField()
    criteria = CriterionResultSerializer(many=True)


class JudgmentSerializer(InputModelSerializer):
    confirmed_by = serializers.CharField(source="confirmed_by.username", read_only=True)

    class Meta:
        model = JudgmentConfirmation
        fields = ("id", "participant", "code", "satisfied", "note", "confirmed_by", "confirmed_at")
        read_only_fields = ("id", "participant", "confirmed_by", "confirmed_at")
        extra_kwargs = {"satisfied": {"required": True}, "note": {"required": False, "max_length": 2000}}
        validators = []  # (participant, code) is unique: a second answer revises the first (the service)


class GilbertDiagnosisSerializer(InputModelSerializer):
    recorded_by = serializers.CharField(source="recorded_by.username", read_only=True)
    note = TextField(
        allow_blank=True, max_length=2000, trim_whitespace=False, help_text="What the diagnosis rests on (required)."
    )

    class Meta:
        model = GilbertSyndromeDiagnosis
        fields = ("id", "participant", "documented", "note", "recorded_by", "recorded_at")
        read_only_fields = ("id", "participant", "recorded_by", "recorded_at")
        extra_kwargs = {"documented": {"required": True}}
        validators = []  # one per participant: a second answer revises the first (the service)


class WithdrawSerializer(serializers.Serializer):
    on = serializers.DateField(help_text="Date of withdrawal (site's date; not in the future).")
    reason = TextField(max_length=2000)


PARTICIPANT = by_role(name="Participant", staff=ParticipantSerializer, sponsor=ParticipantPseudonymSerializer)
PARTICIPANT_LIST = by_role(
    name="Participant", staff=ParticipantSerializer, sponsor=ParticipantPseudonymSerializer, many=True
)


@extend_schema_view(
    list=extend_schema(
        responses={200: PARTICIPANT_LIST, **error_responses(400, 401, 403)},
        description="Participants. Sponsors (and roles that cannot change participants) get them without "
        "direct identifiers (`ParticipantSponsor`: no initials, date of birth or screening number; they are "
        "known by study ID); staff who may change participants get `ParticipantStaff`.",
    ),
    retrieve=extend_schema(
        responses={200: PARTICIPANT, **error_responses(401, 403, 404)},
        description="One participant: `ParticipantStaff`, or `ParticipantSponsor` (without identifiers).",
    ),
)
class ParticipantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Participants from screening to enrollment."""

    permission_classes = [RoleActionPermissions]
    filter_backends = [ListFilterBackend]
    filterset_class = ParticipantFilter
    action_perms = {
        "screening": ("cohorts.view_screeningrecord",),
        "screening_save": ("cohorts.change_participant",),
        "eligibility": ("cohorts.view_criterionassessment",),
        "judgments": ("cohorts.add_judgmentconfirmation",),
        "gilbert": ("cohorts.add_gilbertsyndromediagnosis",),
        "withdraw": ("cohorts.change_participant",),
    }

    def get_queryset(self) -> QuerySet[Participant]:
        return scope_participants(selectors.participant_list(), self.request.user)

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False) or sees_direct_identifiers(self.request.user):
            return ParticipantSerializer
        return ParticipantPseudonymSerializer

    def _fresh(self, participant: Participant) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=participant.pk)).data

    @extend_schema(
        request=ParticipantCreateSerializer,
        responses={201: ParticipantSerializer, **error_responses(400, 401, 403, 409)},
        description="Start screening: a screening number at a site of the trial.",
    )
    def create(self, request):
        serializer = ParticipantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        participant = services.participant_register(**serializer.validated_data, by=request.user)
        return Response(self._fresh(participant), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ScreeningSerializer, **error_responses(401, 403, 404)})
    @action(detail=True, methods=["get"], url_path="screening")
    def screening(self, request, pk=None):
        record = ScreeningRecord.objects.filter(participant=self.get_object()).prefetch_related("fractures").first()
        if record is None:
            raise NotFound("No screening data has been recorded for this participant.")
        return Response(ScreeningSerializer(record).data)

    @extend_schema(
        request=ScreeningSerializer,
        responses={200: ScreeningSerializer, 201: ScreeningSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Record (201) or change (200) screening data, then evaluate eligibility. PUT needs "
        "`screening_date`; PATCH changes only the fields given. A change needs a `reason`.",
    )
    @screening.mapping.put
    @screening.mapping.patch
    def screening_save(self, request, pk=None):
        participant = self.get_object()
        existed = ScreeningRecord.objects.filter(participant=participant).exists()
        serializer = ScreeningSerializer(data=request.data, partial=request.method == "PATCH")
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        fractures = values.pop("fractures", None)
        reason = values.pop("reason", "")
        record = services.screening_record_save(
            participant=participant, values=values, fractures=fractures, by=request.user, reason=reason
        )
        return Response(
            ScreeningSerializer(record).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )

    @extend_schema(responses={200: EligibilitySerializer, **error_responses(401, 403, 404)})
    @action(detail=True, methods=["get"])
    def eligibility(self, request, pk=None):
        """Each criterion's verdict and reason, and what still stands between the participant and enrollment."""
        participant = self.get_object()
        summary = selectors.eligibility_summary(participant)
        body = {
            "participant": participant.pk,
            "eligible": summary.eligible,
            "unmet": list(summary.unmet),
            "missing": list(summary.missing),
            "pending_judgment": list(summary.pending_judgment),
            "consent_missing": summary.consent_missing,
            "criteria": [
                {
                    "code": r.code,
                    "kind": str(r.kind),
                    "verdict": str(r.verdict),
                    "reason": r.reason,
                    "judgment_applied": r.judgment_applied,
                }
                for r in summary.result.results
            ],
        }
        return Response(EligibilitySerializer(body).data)

    @extend_schema(
        request=JudgmentSerializer,
        responses={201: JudgmentSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="An investigator confirms (satisfied=true) or not a criterion that needs judgment.",
    )
    @action(detail=True, methods=["post"])
    def judgments(self, request, pk=None):
        participant = self.get_object()
        serializer = JudgmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        confirmation = services.judgment_confirm(participant=participant, **serializer.validated_data, by=request.user)
        return Response(JudgmentSerializer(confirmation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=GilbertDiagnosisSerializer,
        responses={
            201: GilbertDiagnosisSerializer,
            200: GilbertDiagnosisSerializer,
            **error_responses(400, 401, 403, 404, 409),
        },
        description="An investigator documents (`documented: true`) or withdraws Gilbert's syndrome, with a `note` "
        "(400 `note_required` without one). Documented, it waives E14's bilirubin limit (not AST, ALT or ALP). 201 "
        "the first time, 200 when it revises the earlier answer; eligibility is evaluated again.",
    )
    @action(detail=True, methods=["post"])
    def gilbert(self, request, pk=None):
        participant = self.get_object()
        existed = GilbertSyndromeDiagnosis.objects.filter(participant=participant).exists()
        serializer = GilbertDiagnosisSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        diagnosis = services.gilbert_diagnosis_record(
            participant=participant, **serializer.validated_data, by=request.user
        )
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(GilbertDiagnosisSerializer(diagnosis).data, status=code)

    @extend_schema(
        request=WithdrawSerializer,
        responses={200: ParticipantSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        participant = self.get_object()
        serializer = WithdrawSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        participant = services.participant_withdraw(
            participant=participant, **serializer.validated_data, by=request.user
        )
        return Response(self._fresh(participant))
