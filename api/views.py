from django.apps import apps
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import TextField
from api.permissions import PermsRequired
from api.serializers import TrialSerializer
from core.free_text import free_text_fields, free_text_mark_reviewed
from trial.access import scope_records, scope_trials
from trial.selectors import trial_list


class TrialViewSet(viewsets.ReadOnlyModelViewSet):
    """Trials with their sites, dose levels, eligibility criteria and visit schedule."""

    serializer_class = TrialSerializer
    queryset = trial_list()  # the permission class reads its model; get_queryset scopes it per user
    lookup_field = "registry_id"
    lookup_value_regex = "[A-Za-z0-9_-]+"

    def get_queryset(self):
        return scope_trials(trial_list(), self.request.user, trial="pk")


def _free_text_models() -> dict[str, type]:
    """``app_label.model_name`` → model, for every model that lists free text (``free_text_fields``)."""
    return {model._meta.label_lower: model for model in apps.get_models() if free_text_fields(model)}


class FreeTextReviewSerializer(serializers.Serializer):
    record = serializers.ChoiceField(choices=sorted(_free_text_models()), help_text="e.g. safety.adverseevent")
    id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    reason = TextField(max_length=2000, help_text="What the review found, e.g. no identifiers in the text")


class FreeTextReviewResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    record = serializers.CharField(read_only=True)
    record_id = serializers.IntegerField(read_only=True)
    reviewed_at = serializers.DateTimeField(read_only=True)
    reason = serializers.CharField(read_only=True)


class FreeTextReviewView(APIView):
    """A data manager releases a record's free text to sponsors, as it reads now (a later change withholds it
    again). Needs ``core.review_free_text``; the record must be in the reader's scope."""

    permission_classes = [PermsRequired]
    required_perms = ("core.review_free_text",)

    @extend_schema(request=FreeTextReviewSerializer, responses={201: FreeTextReviewResultSerializer})
    def post(self, request):
        body = FreeTextReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = _free_text_models()[body.validated_data["record"]]
        record = get_object_or_404(scope_records(model.objects.all(), request.user), pk=body.validated_data["id"])
        review = free_text_mark_reviewed(record=record, by=request.user, reason=body.validated_data["reason"])
        result = {"id": review.pk, "record": body.validated_data["record"], "record_id": review.object_id,
                  "reviewed_at": review.reviewed_at, "reason": review.reason}  # fmt: skip
        return Response(FreeTextReviewResultSerializer(result).data, status=status.HTTP_201_CREATED)
