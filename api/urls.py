"""Every API route under ``/api/v1/``: one router, every view imported here."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from api.views import FreeTextReviewView, TrialViewSet
from cohorts.api import (
    CohortViewSet,
    ConsentDocumentViewSet,
    ConsentViewSet,
    FollowUpVisitViewSet,
    InfusionViewSet,
    LostToFollowUpViewSet,
    OpenFirstCohortView,
    ParticipantViewSet,
    ProtocolDeviationViewSet,
)
from exports.api import DefineExportView, DossierJsonView, DossierPdfView, FhirExportView, SdtmExportView
from reminders.api import ReminderViewSet
from safety.api import (
    AdverseEventViewSet,
    EscalationHistoryView,
    ReportingClockViewSet,
    SafetyReviewViewSet,
    TrialSummaryView,
)

router = DefaultRouter()
# The protocol, participants, consent, cohorts and enrollment.
router.register("trials", TrialViewSet, basename="trial")
router.register("participants", ParticipantViewSet, basename="participant")
router.register("consents", ConsentViewSet, basename="consent")
router.register("consent-documents", ConsentDocumentViewSet, basename="consent-document")
router.register("cohorts", CohortViewSet, basename="cohort")
# Safety reviews and sign-off.
router.register("reviews", SafetyReviewViewSet, basename="review")
# Infusions, drip-rate readings, follow-up visits and protocol deviations.
router.register("infusions", InfusionViewSet, basename="infusion")
router.register("visits", FollowUpVisitViewSet, basename="followupvisit")
router.register("deviations", ProtocolDeviationViewSet, basename="deviation")
router.register("lost-to-follow-up", LostToFollowUpViewSet, basename="lost-to-follow-up")
# Adverse events, DLT decisions and expedited-reporting clocks.
router.register("adverse-events", AdverseEventViewSet, basename="adverse-event")
router.register("reporting-clocks", ReportingClockViewSet, basename="reporting-clock")
# Reminders addressed to the reader (her user or her roles); sponsors have none.
router.register("reminders", ReminderViewSet, basename="reminder")

urlpatterns = [
    path("trials/<str:registry_id>/open-first-cohort/", OpenFirstCohortView.as_view(), name="trial-open-first-cohort"),
    path("trials/<slug:registry_id>/escalation-history/", EscalationHistoryView.as_view(), name="escalation-history"),
    path("trials/<slug:registry_id>/summary/", TrialSummaryView.as_view(), name="trial-summary"),
    # Exports: FHIR R4 Bundle, SDTM-shaped CSV and its define listing, escalation dossiers.
    path("trials/<slug:registry_id>/export/fhir/", FhirExportView.as_view(), name="export-fhir"),
    path("trials/<slug:registry_id>/export/sdtm/<slug:domain>.csv", SdtmExportView.as_view(), name="export-sdtm"),
    path("trials/<slug:registry_id>/export/define/", DefineExportView.as_view(), name="export-define"),
    path("reviews/<int:pk>/dossier.json", DossierJsonView.as_view(), name="review-dossier-json"),
    path("reviews/<int:pk>/dossier.pdf", DossierPdfView.as_view(), name="review-dossier-pdf"),
    # A data manager releases a record's reviewed free text to sponsors (core.free_text).
    path("free-text-reviews/", FreeTextReviewView.as_view(), name="free-text-review"),
    *router.urls,
]
