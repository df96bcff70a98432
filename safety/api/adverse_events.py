"""REST API for adverse events, DLT decisions and expedited-reporting clocks (``/api/v1/``).

- ``adverse-events``: staff record (POST) and follow up (PATCH, ``reason`` required) through
  ``safety.services``; sponsors and the committee read. Filters: ``trial``, ``cohort``,
  ``participant``, ``grade``, ``worst_grade``, ``serious``, ``dlt_status``, ``onset_after``,
  ``onset_before`` (inclusive dates).
- ``adverse-events/{id}/dlt-decision/``: an investigator confirms or rejects a DLT candidate.
- ``reporting-clocks``: each with ``overdue``; filter ``overdue=true``; ``{id}/report/`` records the report.

Views are thin: a strict serializer checks the request's shape first (wrong types, out-of-range
numbers, NUL bytes, unknown fields and missing fields are a 400 with field messages, nothing
written); then ONE service does the work and the rule checks, its ``DomainError`` becoming
409/400/403 JSON in ``api.exceptions``. Participants appear by ``study_id`` only, for every reader:
no initials, birth date or screening number. Lists take a constant number of queries.
"""

import django_filters
from django import forms
from django.db.models import OuterRef, QuerySet, Subquery
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.fields import (
    StaffMemberField,
    StaffTextField,
    TextField,
    id_field,
    reader_is_sponsor,
)
from api.filters import GradeFilter, IdFilter, ListFilterBackend, RegistryIdFilter, YesNoFilter
from api.permissions import RoleActionPermissions
from api.schema import error_responses
from api.serializers import StrictSerializer
from cohorts.models import Enrollment, Participant
from safety import selectors, services
from safety.api.clocks import ReportingClockSerializer
from safety.models import AdverseEvent, CtcaeTerm
from trial.access import scope_participants


class AdverseEventSerializer(serializers.ModelSerializer):
    """An adverse event as every reader sees it: the participant by study ID only, never identifiers."""

    participant = serializers.IntegerField(source="participant_id", read_only=True)
    study_id = serializers.CharField(source="participant.study_id", read_only=True, allow_null=True)
    cohort = serializers.IntegerField(
        source="cohort_ref",
        read_only=True,
        allow_null=True,
        help_text="The participant's enrollment cohort (null before enrollment).",
    )
    ctcae_term = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    term = serializers.SerializerMethodField(
        help_text="The CTCAE term, or the free-text term where none applies (null for sponsors then)."
    )
    soc = serializers.SerializerMethodField(help_text="CTCAE system organ class (blank for a free-text term).")
    verbatim_term = StaffTextField()
    ctcae_term_text = StaffTextField()
    reported_by = StaffMemberField()
    dlt_status_display = serializers.CharField(source="get_dlt_status_display", read_only=True)
    dlt_reason = StaffTextField()
    dlt_decided_by = StaffMemberField()
    clocks = ReportingClockSerializer(many=True, read_only=True)

    class Meta:
        model = AdverseEvent
        fields = (
            "id",
            "participant",
            "study_id",
            "cohort",
            "verbatim_term",
            "ctcae_term",
            "ctcae_term_text",
            "term",
            "soc",
            "onset_date",
            "resolution_date",
            "grade",
            "worst_grade",
            "serious",
            "sae_death",
            "sae_life_threatening",
            "sae_hospitalisation",
            "sae_disability",
            "sae_congenital_anomaly",
            "sae_other_important",
            "relationship",
            "expected",
            "infusion_reaction",
            "action_taken",
            "outcome",
            "site_aware_at",
            "information_received_at",
            "reported_by",
            "created_at",
            "dlt_status",
            "dlt_status_display",
            "dlt_reason",
            "dlt_decided_by",
            "dlt_decided_at",
            "clocks",
        )
        read_only_fields = fields

    def get_term(self, obj: AdverseEvent) -> str | None:
        if obj.ctcae_term:
            return obj.ctcae_term.term
        return None if reader_is_sponsor(self) else obj.ctcae_term_text  # free text: withheld from sponsors

    def get_soc(self, obj: AdverseEvent) -> str:
        return obj.ctcae_term.soc if obj.ctcae_term else ""


class AdverseEventUpdateSerializer(StrictSerializer):
    """A follow-up: only the fields given change; ``reason`` is required (kept in the event's history)."""

    verbatim_term = TextField(max_length=300)
    ctcae_term = id_field(CtcaeTerm.objects.all(), allow_null=True, help_text="Id of a CTCAE term.")
    ctcae_term_text = TextField(
        max_length=200, allow_blank=True, help_text="The term as free text where the table has none."
    )
    onset_date = serializers.DateField(help_text="Site's date; not before consent, not in the future.")
    resolution_date = serializers.DateField(allow_null=True)
    grade = serializers.IntegerField(min_value=1, max_value=5, help_text="CTCAE grade 1 to 5.")
    serious = serializers.BooleanField(help_text="Serious (ICH E2A): needs at least one sae_* criterion.")
    sae_death = serializers.BooleanField()
    sae_life_threatening = serializers.BooleanField()
    sae_hospitalisation = serializers.BooleanField()
    sae_disability = serializers.BooleanField()
    sae_congenital_anomaly = serializers.BooleanField()
    sae_other_important = serializers.BooleanField()
    relationship = serializers.ChoiceField(choices=AdverseEvent.Relationship.choices)
    expected = serializers.BooleanField(help_text="Expected per the investigator's brochure.")
    infusion_reaction = serializers.BooleanField()
    action_taken = serializers.ChoiceField(choices=AdverseEvent.Action.choices)
    outcome = serializers.ChoiceField(choices=AdverseEvent.Outcome.choices)
    site_aware_at = serializers.DateTimeField(help_text="When the site became aware (starts the reporting clocks).")
    information_received_at = serializers.DateTimeField(
        help_text="When the site received this follow-up's information (default: now). A clock the follow-up "
        "starts (the event became serious, a SUSAR, fatal or life-threatening) counts from here."
    )
    reason = TextField(max_length=2000, write_only=True, help_text="Why the event is updated (required).")

    def validate(self, attrs):
        if not attrs.get("reason"):
            raise serializers.ValidationError({"reason": ["Required: say why the event is updated."]})
        if len(attrs) == 1:
            raise serializers.ValidationError("Nothing to update: give at least one field besides the reason.")
        return attrs


class AdverseEventCreateSerializer(AdverseEventUpdateSerializer):
    """A new event. Required: participant, verbatim_term, onset_date, grade, relationship, and a CTCAE
    term (``ctcae_term``) or its free text (``ctcae_term_text``). ``site_aware_at`` defaults to now."""

    participant = id_field(Participant.objects.all(), help_text="Id of the participant.")
    reason = None  # a new event has no reason for change
    information_received_at = None  # a new event's information is received at awareness

    def get_fields(self):
        fields = super().get_fields()
        optional = set(services.AE_FIELDS) - {"verbatim_term", "onset_date", "grade", "relationship"}
        for name in optional:
            fields[name].required = False
        return fields

    def validate(self, attrs):
        return attrs


class DltDecisionSerializer(StrictSerializer):
    confirm = serializers.BooleanField(help_text="true: confirm the DLT; false: reject it.")
    reason = TextField(max_length=2000, help_text="Why; kept with the decision.")


class _AdverseEventFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        after, before = data.get("onset_after"), data.get("onset_before")
        if after and before and after > before:
            self.add_error("onset_before", "Must not be before onset_after.")
        return data


class AdverseEventFilter(django_filters.FilterSet):
    trial = RegistryIdFilter("participant__trial__registry_id")
    cohort = IdFilter(field_name="participant__enrollments__cohort_id", help_text="Cohort id.")
    participant = IdFilter(field_name="participant_id", help_text="Participant id.")
    grade = GradeFilter(help_text="Current CTCAE grade.")
    worst_grade = GradeFilter(help_text="Worst grade reached.")
    serious = YesNoFilter(help_text="Serious events only (true) or non-serious only (false).")
    dlt_status = django_filters.ChoiceFilter(choices=AdverseEvent.DltStatus.choices)
    onset_after = django_filters.DateFilter(
        field_name="onset_date", lookup_expr="gte", help_text="Onset on or after this date."
    )
    onset_before = django_filters.DateFilter(
        field_name="onset_date", lookup_expr="lte", help_text="Onset on or before this date."
    )

    class Meta:
        form = _AdverseEventFilterForm


@extend_schema_view(
    list=extend_schema(
        description="Adverse events, newest onset first, each with its reporting clocks and DLT status. "
        "Participants appear by study ID only.",
    ),
    retrieve=extend_schema(description="One adverse event with its clocks and DLT status."),
)
class AdverseEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Adverse events: staff record and follow up; sponsors and the committee read."""

    serializer_class = AdverseEventSerializer
    permission_classes = [RoleActionPermissions]
    filter_backends = [ListFilterBackend]
    filterset_class = AdverseEventFilter
    action_perms = {"dlt_decision": ("safety.decide_dlt",)}

    def get_queryset(self) -> QuerySet[AdverseEvent]:
        cohort = Enrollment.objects.filter(participant=OuterRef("participant")).order_by().values("cohort")[:1]
        events = scope_participants(selectors.adverse_event_list(), self.request.user, participant="participant")
        return events.annotate(cohort_ref=Subquery(cohort)).order_by("-onset_date", "-pk")

    def _fresh(self, event: AdverseEvent) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=event.pk)).data

    @extend_schema(
        request=AdverseEventCreateSerializer,
        responses={201: AdverseEventSerializer, **error_responses(400, 401, 403, 409)},
        description="Record an adverse event. DLT candidacy, the expedited-reporting clocks and the stopping "
        "rules are evaluated in the same transaction (a related death pauses the open cohort). Refusals: 400 "
        "`invalid`, `onset_before_consent`, `date_in_future`; 409 `no_consent`.",
    )
    def create(self, request):
        body = AdverseEventCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        participant = values.pop("participant")
        event = services.adverse_event_record(participant=participant, values=values, by=request.user)
        return Response(self._fresh(event), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AdverseEventUpdateSerializer,
        responses={200: AdverseEventSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="A follow-up: change only the fields given, with a `reason` and, optionally, "
        "`information_received_at` (default now). The worst grade is kept; DLT candidacy, clocks and stopping "
        "rules are re-evaluated; a grade 5 / fatal event is made serious with the death criterion. A clock "
        "the follow-up starts counts from `information_received_at`.",
    )
    def partial_update(self, request, pk=None):
        event = self.get_object()
        body = AdverseEventUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        reason = values.pop("reason")
        received = values.pop("information_received_at", None)
        event = services.adverse_event_update(
            event=event, values=values, reason=reason, by=request.user, information_received_at=received
        )
        return Response(self._fresh(event))

    @extend_schema(
        request=DltDecisionSerializer,
        responses={200: AdverseEventSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="An investigator confirms or rejects a DLT candidate with a reason (409 "
        "`not_a_dlt_candidate` otherwise). A confirmed DLT may meet a stopping rule and pause the cohort.",
    )
    @action(detail=True, methods=["post"], url_path="dlt-decision")
    def dlt_decision(self, request, pk=None):
        event = self.get_object()
        body = DltDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = services.dlt_decide(event=event, **body.validated_data, by=request.user)
        return Response(self._fresh(event))
