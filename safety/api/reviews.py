"""Safety reviews over the API: sponsors read decisions and signatures; committee members propose
and sign with their password in the request (a token alone never signs); the chair opens a review."""

import django_filters
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import StaffTextField, TextField, reader_is_sponsor
from api.filters import ListFilterBackend, RegistryIdFilter
from api.permissions import RoleActionPermissions
from cohorts.models import Cohort
from safety import services
from safety.models import SafetyReview, SignOff
from safety.selectors import snapshots_for_sponsor, trial_summary_for
from trial.access import scope_trials
from trial.models import Trial


class SignatureSerializer(serializers.ModelSerializer):
    """A signature: the signer's printed name for every reader (21 CFR 11.50: the signed record shows it)."""

    signer = serializers.CharField(source="signer_full_name", read_only=True)
    comment = StaffTextField()

    class Meta:
        model = SignOff
        fields = ("sequence", "signer", "meaning", "decision", "mtd_level", "signed_at", "comment", "digest")


class SignResultSerializer(SignatureSerializer):
    """The signature just given, and what it did: whether the review's decision took effect at it (quorum
    with the chair and no rejection), the review's state now, and the cohort the decision opened."""

    decision_effective = serializers.SerializerMethodField(
        help_text="True when this signature reached quorum and the decision took effect."
    )
    review_state = serializers.CharField(
        source="review.state",
        read_only=True,
        help_text="The review's state now: open (waiting for more signatures), effective or rejected.",
    )
    resulting_cohort = serializers.IntegerField(
        source="review.resulting_cohort_id",
        read_only=True,
        allow_null=True,
        help_text="Id of the cohort the decision opened (escalate, expand, de-escalate); null otherwise.",
    )

    class Meta(SignatureSerializer.Meta):
        fields = (*SignatureSerializer.Meta.fields, "decision_effective", "review_state", "resulting_cohort")

    def get_decision_effective(self, obj: SignOff) -> bool:
        return obj.review.state == SafetyReview.State.EFFECTIVE


class SnapshotField(serializers.JSONField):
    """The frozen snapshot; for a sponsor, a copy without unreleased free text or staff names
    (``safety.selectors.snapshots_for_sponsor``, once for every review of the response). The digest is always
    the frozen snapshot's."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance):
        snapshot = super().get_attribute(instance)
        if not reader_is_sponsor(self):
            return snapshot
        shown = self.context.setdefault("sponsor_snapshots", {})
        if instance.pk not in shown:
            root = self.root.instance
            rows = list(root) if isinstance(root, list | tuple | QuerySet) else [root]
            rows = [row for row in rows if isinstance(row, SafetyReview) and row.pk not in shown]
            if instance not in rows:
                rows.append(instance)
            shown.update(zip([r.pk for r in rows], snapshots_for_sponsor([r.snapshot for r in rows]), strict=True))
        return shown[instance.pk]


class ReviewSerializer(serializers.ModelSerializer):
    cohort_sequence = serializers.IntegerField(source="cohort.sequence", read_only=True)
    dose_level = serializers.IntegerField(source="cohort.dose_level.level", read_only=True)
    protocol_recommends = serializers.SerializerMethodField()
    signatures = SignatureSerializer(many=True, read_only=True)
    resulting_cohort = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    reason = StaffTextField()
    rationale = StaffTextField()
    snapshot = SnapshotField()

    class Meta:
        model = SafetyReview
        fields = (
            "id",
            "trial",
            "cohort",
            "cohort_sequence",
            "dose_level",
            "kind",
            "reason",
            "state",
            "opened_at",
            "snapshot",
            "snapshot_digest",
            "protocol_recommends",
            "decision",
            "rationale",
            "proposed_at",
            "decided_at",
            "resulting_cohort",
            "declared_mtd_level",
            "mtd_dose_level",
            "mtd_statement",
            "mtd_departs_from_rule",
            "acknowledged_visits",
            "signatures",
        )

    def get_protocol_recommends(self, obj) -> str:
        return services.protocol_recommendation(obj)


class ReviewFilter(django_filters.FilterSet):
    trial = RegistryIdFilter("trial__registry_id", validators=[RegexValidator(r"^[A-Za-z0-9_-]{1,32}$")])
    state = django_filters.ChoiceFilter(choices=SafetyReview.State.choices)


class OpenReviewSerializer(serializers.Serializer):
    cohort = serializers.PrimaryKeyRelatedField(queryset=Cohort.objects.all())
    reason = TextField(max_length=2000)


class ProposeSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=SafetyReview.Decision.choices)
    rationale = TextField(max_length=5000, required=False, allow_blank=True, default="")
    mtd_level = serializers.IntegerField(
        min_value=1,
        max_value=100,
        required=False,
        allow_null=True,
        default=None,
        help_text="With decision `mtd` only: the treated dose level the committee declares the MTD, when it "
        "departs from the design's MTD selection (needs a rationale). Omit it to record the design's selection.",
    )
    acknowledge_visits = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The rationale addresses the overdue DLT-window visits the review lists; without it a decision "
        "other than `stop` is refused (409 `visits_unrecorded`) until they are recorded.",
    )


class SignSerializer(serializers.Serializer):
    password = TextField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    meaning = serializers.ChoiceField(choices=SignOff.Meaning.choices)
    comment = TextField(max_length=5000, required=False, allow_blank=True, default="")


class SafetyReviewViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Safety reviews with the frozen snapshot, the proposal, the decision and the signatures."""

    serializer_class = ReviewSerializer
    queryset = SafetyReview.objects.select_related("cohort__dose_level", "trial").prefetch_related("signatures")
    filter_backends = [ListFilterBackend]
    filterset_class = ReviewFilter  # a bad value (a NUL byte, an unknown state) is a 400

    def get_queryset(self):
        return scope_trials(super().get_queryset(), self.request.user).order_by("-opened_at")

    @extend_schema(request=OpenReviewSerializer, responses={201: ReviewSerializer})
    def create(self, request, *args, **kwargs):
        """The committee chair calls a review of an active cohort."""
        body = OpenReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = services.review_open_by_chair(
            cohort=body.validated_data["cohort"], reason=body.validated_data["reason"], by=request.user
        )
        return Response(self.get_serializer(review).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProposeSerializer, responses={200: ReviewSerializer})
    @action(detail=True, methods=["post"])
    def propose(self, request, pk=None):
        """Set the decision the committee will sign (before the first signature)."""
        review = self.get_object()  # an unknown review is a 404 whatever the body
        body = ProposeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = services.review_propose(review=review, by=request.user, **body.validated_data)
        return Response(self.get_serializer(review).data)

    @extend_schema(request=SignSerializer, responses={201: SignResultSerializer})
    @action(detail=True, methods=["post"])
    def sign(self, request, pk=None):
        """Sign with the password re-entered (21 CFR Part 11 §11.200): the token alone is not a signature.
        The answer says whether the decision took effect at this signature and which cohort it opened."""
        review = self.get_object()  # an unknown review is a 404 whatever the body
        body = SignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        signature = services.review_sign(review=review, user=request.user, **body.validated_data)
        return Response(
            SignResultSerializer(signature, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    # Reads need safety.view_safetyreview; each write the permission its service checks again (the services
    # also judge committee membership of the trial and whether the chair holds the permission as her own).
    permission_classes = [RoleActionPermissions]
    action_perms = {
        "create": ("safety.view_safetyreview", "safety.chair_review"),
        "propose": ("safety.view_safetyreview", "safety.sign_review"),
        "sign": ("safety.view_safetyreview", "safety.sign_review"),
    }


class EscalationStepSerializer(serializers.ModelSerializer):
    review = serializers.IntegerField(source="pk", read_only=True)
    from_cohort = serializers.IntegerField(source="cohort.sequence", read_only=True)
    from_dose_level = serializers.IntegerField(source="cohort.dose_level.level", read_only=True)
    to_cohort = serializers.IntegerField(source="resulting_cohort.sequence", read_only=True, allow_null=True)
    to_dose_level = serializers.IntegerField(
        source="resulting_cohort.dose_level.level", read_only=True, allow_null=True
    )
    signatures = SignatureSerializer(many=True, read_only=True)
    rationale = StaffTextField()

    class Meta:
        model = SafetyReview
        fields = (
            "review",
            "decision",
            "decided_at",
            "from_cohort",
            "from_dose_level",
            "to_cohort",
            "to_dose_level",
            "rationale",
            "signatures",
        )


class EscalationHistoryView(ListAPIView):
    """Every effective decision of a trial, oldest first: which cohort closed, which opened, who signed."""

    serializer_class = EscalationStepSerializer
    pagination_class = None
    queryset = SafetyReview.objects.none()  # for the permission class; the real queryset is below

    def get_queryset(self):
        trial = get_object_or_404(
            scope_trials(Trial.objects.all(), self.request.user, trial="pk"), registry_id=self.kwargs["registry_id"]
        )
        return (
            SafetyReview.objects.filter(trial=trial, state=SafetyReview.State.EFFECTIVE)
            .select_related("cohort__dose_level", "resulting_cohort__dose_level")
            .prefetch_related("signatures")
            .order_by("decided_at")
        )


class TrialSummaryView(APIView):
    """Per cohort: dose, state, capacity, enrolled, infused, in DLT window, DLTs, AEs by grade, serious
    AEs and the next review — what a sponsor dashboard shows. Reading it needs trial.view_trial."""

    queryset = Trial.objects.none()  # for the permission class (trial.view_trial)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, registry_id: str):
        summary = trial_summary_for(registry_id, request.user)  # only a trial the user sees (trial.access)
        if summary is None:
            raise Http404
        return Response(summary)
