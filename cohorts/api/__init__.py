"""REST API of the cohorts app: participants and screening, consent, cohorts and enrollment, infusions,
follow-up visits and deviations. ``api/urls.py`` routes every view under ``/api/v1/``."""

from cohorts.api.cohorts import CohortViewSet, OpenFirstCohortView
from cohorts.api.consent import ConsentDocumentViewSet, ConsentViewSet
from cohorts.api.follow_up import FollowUpVisitViewSet, ProtocolDeviationViewSet
from cohorts.api.infusions import InfusionViewSet
from cohorts.api.lost_to_follow_up import LostToFollowUpViewSet
from cohorts.api.participants import ParticipantViewSet

__all__ = [
    "CohortViewSet",
    "ConsentDocumentViewSet",
    "ConsentViewSet",
    "FollowUpVisitViewSet",
    "InfusionViewSet",
    "LostToFollowUpViewSet",
    "OpenFirstCohortView",
    "ParticipantViewSet",
    "ProtocolDeviationViewSet",
]
