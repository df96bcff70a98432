"""REST API for expedited-reporting clocks: each with ``overdue``; ``{id}/report/`` records the report."""

import django_filters
from django.db.models import BooleanField, Case, QuerySet, Value, When
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.fields import StaffMemberField, StaffTextField, TextField
from api.filters import IdFilter, ListFilterBackend, RegistryIdFilter, YesNoFilter
from api.permissions import RoleActionPermissions
from api.schema import error_responses
from api.serializers import StrictSerializer
from safety import services
from safety.models import ReportingClock
from trial.access import scope_participants


class ReportingClockSerializer(serializers.ModelSerializer):
    """An expedited-reporting clock (also nested in its adverse event): ``overdue`` is true while it is
    unreported past its due time."""

    adverse_event = serializers.IntegerField(source="adverse_event_id", read_only=True)
    study_id = serializers.CharField(source="adverse_event.participant.study_id", read_only=True, allow_null=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    done_by = StaffMemberField()
    reported_to = StaffTextField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = ReportingClock
        fields = (
            "id",
            "adverse_event",
            "study_id",
            "kind",
            "kind_display",
            "started_at",
            "due_at",
            "recipient",
            "overdue",
            "done_at",
            "done_by",
            "reported_to",
        )
        read_only_fields = fields

    def get_overdue(self, obj: ReportingClock) -> bool:
        return obj.done_at is None and obj.due_at < timezone.now()


class ClockReportSerializer(StrictSerializer):
    reported_to = TextField(max_length=200, help_text="Who received the report.")
    done_at = serializers.DateTimeField(required=False, help_text="When it was reported (default: now).")


class ReportingClockFilter(django_filters.FilterSet):
    overdue = YesNoFilter(
        field_name="is_overdue", help_text="Only overdue clocks (true) or only those not overdue (false)."
    )
    done = YesNoFilter(method="filter_done", help_text="Only reported clocks (true) or only open ones (false).")
    kind = django_filters.ChoiceFilter(choices=ReportingClock.Kind.choices)
    adverse_event = IdFilter(field_name="adverse_event_id", help_text="Adverse event id.")
    trial = RegistryIdFilter("adverse_event__participant__trial__registry_id")

    def filter_done(self, queryset, name, value):
        return queryset.filter(done_at__isnull=not value)


@extend_schema_view(
    list=extend_schema(
        description="Expedited-reporting clocks by due time; `overdue` is true while unreported past the due time.",
    ),
)
class ReportingClockViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Expedited-reporting deadlines of serious events (sponsor 24 h; SUSAR 7 or 15 days)."""

    serializer_class = ReportingClockSerializer
    permission_classes = [RoleActionPermissions]
    filter_backends = [ListFilterBackend]
    filterset_class = ReportingClockFilter
    action_perms = {"report": ("safety.change_reportingclock",)}

    def get_queryset(self) -> QuerySet[ReportingClock]:
        overdue = Case(
            When(done_at__isnull=True, due_at__lt=timezone.now(), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
        clocks = ReportingClock.objects.select_related("adverse_event__participant", "done_by")
        clocks = scope_participants(clocks, self.request.user, participant="adverse_event__participant")
        return clocks.annotate(is_overdue=overdue).order_by("due_at", "pk")

    @extend_schema(
        request=ClockReportSerializer,
        responses={200: ReportingClockSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Record that the report was made: to whom and when (by the requesting user). 409 "
        "`already_reported`; 400 `invalid_time` for a time before awareness or in the future.",
    )
    @action(detail=True, methods=["post"])
    def report(self, request, pk=None):
        clock = self.get_object()
        body = ClockReportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clock = services.clock_complete(
            clock=clock,
            done_at=body.validated_data.get("done_at") or timezone.now(),
            reported_to=body.validated_data["reported_to"],
            by=request.user,
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=clock.pk)).data)
