"""REST API for lost-to-follow-up flags (``lost-to-follow-up/``): opened by the follow-up sweep after the
protocol's number of consecutive missed visits; an investigator confirms (``…/confirm/``) or dismisses
(``…/dismiss/``) each, with a note."""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.fields import TextField
from api.filters import IdFilter, ListFilterBackend
from api.permissions import RoleActionPermissions
from api.schema import error_responses
from cohorts import selectors, services
from cohorts.models import LostToFollowUp


class LostToFollowUpSerializer(serializers.ModelSerializer):
    study_id = serializers.CharField(source="participant.study_id", read_only=True, allow_null=True)
    participant_status = serializers.CharField(source="participant.status", read_only=True)
    last_missed_visit_code = serializers.CharField(source="last_missed_visit.code", read_only=True)
    decided_by = serializers.SerializerMethodField()

    class Meta:
        model = LostToFollowUp
        fields = (
            "id",
            "participant",
            "study_id",
            "participant_status",
            "missed_visits",
            "last_missed_visit",
            "last_missed_visit_code",
            "flagged_at",
            "state",
            "decided_by",
            "decided_at",
            "decision_note",
        )
        read_only_fields = fields

    def get_decided_by(self, flag: LostToFollowUp) -> str:
        user = flag.decided_by
        return (user.get_full_name().strip() or user.get_username()) if user else ""


class LostToFollowUpDecisionSerializer(serializers.Serializer):
    note = TextField(max_length=2000, help_text="What was tried, or why she is still followed.")


class LostToFollowUpFilter(django_filters.FilterSet):
    participant = IdFilter(field_name="participant_id", help_text="Participant id.")
    state = django_filters.ChoiceFilter(choices=LostToFollowUp.State.choices)


@extend_schema_view(list=extend_schema(description="Lost-to-follow-up flags, newest first."))
class LostToFollowUpViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Participants flagged lost to follow-up, pending an investigator's confirmation, and the decisions."""

    serializer_class = LostToFollowUpSerializer
    filter_backends = [ListFilterBackend]
    filterset_class = LostToFollowUpFilter
    permission_classes = [RoleActionPermissions]
    action_perms = {"confirm": ("cohorts.decide_losttofollowup",), "dismiss": ("cohorts.decide_losttofollowup",)}

    def get_queryset(self) -> QuerySet[LostToFollowUp]:
        return selectors.lost_to_follow_up_list()

    def _decide(self, request, decide) -> Response:
        flag = self.get_object()
        serializer = LostToFollowUpDecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flag = decide(flag=flag, note=serializer.validated_data["note"], by=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=flag.pk)).data)

    @extend_schema(
        request=LostToFollowUpDecisionSerializer,
        responses={200: LostToFollowUpSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Confirm that the participant is lost to follow-up (Investigator). 409 "
        "`lost_to_follow_up_not_pending` when the flag is decided already.",
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._decide(request, services.lost_to_follow_up_confirm)

    @extend_schema(
        request=LostToFollowUpDecisionSerializer,
        responses={200: LostToFollowUpSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Dismiss the flag: she is still followed (Investigator); missed visits are counted again "
        "from the next one.",
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        return self._decide(request, services.lost_to_follow_up_dismiss)
