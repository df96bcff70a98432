from django.urls import path
from rest_framework.routers import DefaultRouter

from api.views import TrialViewSet
from cohorts.api import (
    CohortViewSet,
    ConsentDocumentViewSet,
    ConsentViewSet,
    OpenFirstCohortView,
    ParticipantViewSet,
)

router = DefaultRouter()
router.register("trials", TrialViewSet, basename="trial")
router.register("participants", ParticipantViewSet, basename="participant")
router.register("consents", ConsentViewSet, basename="consent")
router.register("consent-documents", ConsentDocumentViewSet, basename="consent-document")
router.register("cohorts", CohortViewSet, basename="cohort")

urlpatterns = [
    path("trials/<str:registry_id>/open-first-cohort/", OpenFirstCohortView.as_view(), name="trial-open-first-cohort"),
    *router.urls,
]

# Safety reviews, sign-off and the escalation history.
from safety.review_api import EscalationHistoryView, SafetyReviewViewSet, TrialSummaryView  # noqa: E402

review_router = DefaultRouter()
review_router.register("reviews", SafetyReviewViewSet, basename="review")
urlpatterns += [
    path("trials/<slug:registry_id>/escalation-history/", EscalationHistoryView.as_view(), name="escalation-history"),
    path("trials/<slug:registry_id>/summary/", TrialSummaryView.as_view(), name="trial-summary"),
    *review_router.urls,
]

# Infusions, drip-rate readings, follow-up visits and protocol deviations.
from cohorts.infusion_api import router as infusion_router  # noqa: E402

urlpatterns += infusion_router.urls

# Adverse events, DLT decisions and expedited-reporting clocks.
from safety.api import router as safety_router  # noqa: E402

urlpatterns += safety_router.urls

# Exports: FHIR R4 Bundle, SDTM-shaped CSV and its define listing, escalation dossiers (issue 14).
from exports.urls import urlpatterns as export_urls  # noqa: E402

urlpatterns += export_urls
