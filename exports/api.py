"""The exports over the API: streamed, with the number of records up front (``X-Export-Records``).

A client shows progress by counting what arrives against that number: CSV rows (after the header),
or Bundle entries. Each export needs the ``view_`` permissions of the models it reads
(``exports.permissions.NEEDS``) and shows what the reader's role may see, as the rest of the API.
"""

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.views import APIView

from exports import dossier, fhir, sdtm, selectors
from exports.permissions import SDTM_DOMAINS, audience_for, may_export
from trial.access import scope_of, scope_trials
from trial.models import Trial


class _Passthrough(BaseRenderer):
    """Lets a client ask for the export's own media type (``?format=`` or ``Accept``); its errors go out as JSON
    (``_ErrorsAsJson`` gives them the JSON media type too)."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data) if isinstance(data, dict | list) else data


class CsvRenderer(_Passthrough):
    media_type, format = "text/csv", "csv"


class FhirRenderer(_Passthrough):
    media_type, format = "application/fhir+json", "fhir"


class PdfRenderer(_Passthrough):
    media_type, format, charset = "application/pdf", "pdf", None


class _ErrorsAsJson:
    """An export's error answers the Error component as ``application/json``, whatever format the client asked
    for: rendered by the export's renderer it went out as JSON text labelled ``application/pdf`` or ``text/csv``
    (schemathesis found it: a 404 of ``dossier.pdf?format=pdf``)."""

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400 and getattr(response, "data", None) is not None:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def _may(kind_of):
    class MayExport(BasePermission):
        message = "Your role does not allow this export."

        def has_permission(self, request, view):
            return may_export(request.user, kind_of(view))

    return MayExport


def _streamed(chunks, *, filename: str, content_type: str, records: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Export-Records"] = str(records)
    response["Cache-Control"] = "no-store"
    return response


class _Export(_ErrorsAsJson, APIView):
    kind = ""
    renderer_classes = (JSONRenderer, CsvRenderer)

    def get_permissions(self):
        return [IsAuthenticated(), _may(lambda view: view.export_kind())()]

    def export_kind(self) -> str:
        return self.kind

    def trial(self) -> Trial:
        trials = scope_trials(Trial.objects.all(), self.request.user, trial="pk")
        return get_object_or_404(trials, registry_id=self.kwargs["registry_id"])


FILE = OpenApiResponse(OpenApiTypes.BINARY, description="The export, streamed; `X-Export-Records` gives the number "
                       "of records it holds.")  # fmt: skip


class FhirExportView(_Export):
    """The trial as a FHIR R4 Bundle: ResearchStudy with its arms, ResearchSubject, MedicationAdministration
    (the infusions) and AdverseEvent (CTCAE grade, seriousness, outcome). Study IDs only."""

    kind = "fhir"
    renderer_classes = (JSONRenderer, FhirRenderer)

    @extend_schema(responses={(200, "application/fhir+json"): FILE}, operation_id="export_fhir")
    def get(self, request, registry_id: str):
        trial, audience = self.trial(), audience_for(request.user)
        return _streamed(fhir.bundle_json(trial, audience), filename=f"{trial.registry_id}-fhir-r4.json",
                         content_type="application/fhir+json", records=fhir.record_count(trial, audience))  # fmt: skip


class SdtmExportView(_Export):
    """One SDTM-shaped domain as CSV (DM, EX, AE, DS or IE), SDTMIG variable names and CDISC terms."""

    def export_kind(self) -> str:
        domain = self.kwargs["domain"].upper()
        if domain not in SDTM_DOMAINS:
            raise NotFound(f"No SDTM domain {self.kwargs['domain']!r}: one of {', '.join(SDTM_DOMAINS)}.")
        return domain

    @extend_schema(responses={(200, "text/csv"): FILE}, operation_id="export_sdtm_domain")
    def get(self, request, registry_id: str, domain: str):
        trial, audience, domain = self.trial(), audience_for(request.user), domain.upper()
        return _streamed(sdtm.domain_csv(domain, trial, audience), filename=f"{trial.registry_id}-{domain.lower()}.csv",
                         content_type="text/csv; charset=utf-8",
                         records=sdtm.record_count(domain, trial, audience))  # fmt: skip


class DefineExportView(_Export):
    """The define-style listing of every SDTM variable: label, type, origin, role, terms, who gets it."""

    kind = "define"

    @extend_schema(responses={(200, "text/csv"): FILE}, operation_id="export_sdtm_define")
    def get(self, request, registry_id: str):
        trial = self.trial()
        rows = sum(len(v) for v in sdtm.DOMAINS.values())
        return _streamed(sdtm.define_csv(audience_for(request.user)), filename=f"{trial.registry_id}-define.csv",
                         content_type="text/csv; charset=utf-8", records=rows)  # fmt: skip


class _Dossier(_ErrorsAsJson, APIView):
    renderer_classes = (JSONRenderer,)

    def get_permissions(self):
        return [IsAuthenticated(), _may(lambda view: "dossier")()]

    def data(self, request, pk: int) -> dict:
        from safety.models import SafetyReview

        try:
            review = selectors.review_for_dossier(pk)
        except SafetyReview.DoesNotExist:
            raise NotFound("No such safety review.") from None
        if not scope_of(request.user).sees_trial(review.trial_id):
            raise NotFound("No such safety review.")
        return dossier.dossier_data(review, audience_for(request.user))


class DossierJsonView(_Dossier):
    """The escalation dossier of a review as JSON: snapshot and digest, recommendation, decision,
    signatures (printed name, meaning, time), chain verification, the cohort it opened."""

    @extend_schema(responses={(200, "application/json"): FILE}, operation_id="review_dossier_json")
    def get(self, request, pk: int):
        data = self.data(request, pk)
        response = HttpResponse(dossier.dossier_json(data), content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="review-{pk}-dossier.json"'
        return response


class DossierPdfView(_Dossier):
    """The escalation dossier of a review as PDF (the same content, for an inspector)."""

    renderer_classes = (JSONRenderer, PdfRenderer)

    @extend_schema(responses={(200, "application/pdf"): FILE}, operation_id="review_dossier_pdf")
    def get(self, request, pk: int):
        response = HttpResponse(dossier.dossier_pdf(self.data(request, pk)), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="review-{pk}-dossier.pdf"'
        return response
