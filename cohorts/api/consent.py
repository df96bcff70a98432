"""REST API for signed consents and the versions of the consent form (site staff only)."""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from api.fields import TextField, id_field
from api.filters import IdFilter, ListFilterBackend
from api.permissions import RoleActionPermissions
from api.schema import error_responses
from api.serializers import InputModelSerializer
from cohorts import services
from cohorts.models import (
    ConsentDocument,
    ConsentRecord,
    Participant,
)
from trial.access import scope_participants

# --- serializers: consent ------------------------------------------------------------------------


class ConsentDocumentSerializer(serializers.ModelSerializer):
    trial = serializers.CharField(source="trial.registry_id", read_only=True)

    class Meta:
        model = ConsentDocument
        fields = ("id", "trial", "version", "title", "effective_from", "effective_to")
        read_only_fields = fields


class ConsentSerializer(InputModelSerializer):
    participant = id_field(Participant.objects.select_related("trial", "site"))
    document = id_field(ConsentDocument.objects.all())
    document_version = serializers.CharField(source="document.version", read_only=True)
    obtained_by = serializers.CharField(source="obtained_by.username", read_only=True)
    witness_name = TextField(max_length=120, required=False, allow_blank=True, default="")

    class Meta:
        model = ConsentRecord
        fields = (
            "id",
            "participant",
            "document",
            "document_version",
            "signed_at",
            "obtained_by",
            "witness_name",
            "withdrawn_at",
            "withdrawal_reason",
        )
        read_only_fields = ("id", "document_version", "obtained_by", "withdrawn_at", "withdrawal_reason")


class ConsentFilter(django_filters.FilterSet):
    participant = IdFilter(field_name="participant_id", help_text="Participant id.")


class ConsentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Signed informed consents (site staff only; sponsors do not read them)."""

    serializer_class = ConsentSerializer
    filter_backends = [ListFilterBackend]
    filterset_class = ConsentFilter
    permission_classes = [RoleActionPermissions]

    def get_queryset(self) -> QuerySet[ConsentRecord]:
        records = ConsentRecord.objects.select_related("document", "obtained_by").order_by("participant", "-signed_at")
        return scope_participants(records, self.request.user, participant="participant")

    @extend_schema(
        responses={201: ConsentSerializer, **error_responses(400, 401, 403, 409)},
        description="Record a signed consent (the version must be in force on the signing date at the site).",
    )
    def create(self, request):
        serializer = ConsentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = services.consent_record(**serializer.validated_data, by=request.user)
        return Response(ConsentSerializer(record).data, status=status.HTTP_201_CREATED)


class ConsentDocumentViewSet(viewsets.ReadOnlyModelViewSet):
    """Versions of the informed-consent form with the period each was in force."""

    serializer_class = ConsentDocumentSerializer
    permission_classes = [RoleActionPermissions]

    def get_queryset(self) -> QuerySet[ConsentDocument]:
        return ConsentDocument.objects.select_related("trial").order_by("trial__registry_id", "-effective_from")
