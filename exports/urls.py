"""Export routes, included under /api/v1/ by api/urls.py."""

from django.urls import path

from exports import api

urlpatterns = [
    path("trials/<slug:registry_id>/export/fhir/", api.FhirExportView.as_view(), name="export-fhir"),
    path("trials/<slug:registry_id>/export/sdtm/<slug:domain>.csv", api.SdtmExportView.as_view(), name="export-sdtm"),
    path("trials/<slug:registry_id>/export/define/", api.DefineExportView.as_view(), name="export-define"),
    path("reviews/<int:pk>/dossier.json", api.DossierJsonView.as_view(), name="review-dossier-json"),
    path("reviews/<int:pk>/dossier.pdf", api.DossierPdfView.as_view(), name="review-dossier-pdf"),
]
