"""Consent-form versions and signed consents."""

from django.contrib import admin

from cohorts import services
from cohorts.models import (
    ConsentDocument,
    ConsentRecord,
)
from core.admin import AuditedAdmin, ServiceRefusalMixin


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(AuditedAdmin):
    list_display = ("trial", "version", "title", "effective_from", "effective_to")
    list_filter = ("trial",)
    list_select_related = ("trial",)

    def save_model(self, request, obj, form, change):
        services.consent_document_save(document=obj, reason=self._reason(form, change), by=request.user)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ServiceRefusalMixin, AuditedAdmin):
    list_display = ("participant", "document", "signed_at", "obtained_by", "withdrawn_at")
    list_filter = ("document", "withdrawn_at")
    list_select_related = ("participant", "document", "obtained_by")
    readonly_fields = ("obtained_by", "withdrawn_at", "withdrawal_reason")

    def get_fieldsets(self, request, obj=None):
        fields = [
            "participant",
            "document",
            "signed_at",
            "witness_name",
            "obtained_by",
            "withdrawn_at",
            "withdrawal_reason",
        ]
        return [(None, {"fields": fields})]

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "participant", "document", "signed_at") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        saved = services.consent_record(
            participant=obj.participant,
            document=obj.document,
            signed_at=obj.signed_at,
            by=request.user,
            witness_name=obj.witness_name,
        )
        obj.pk = saved.pk
