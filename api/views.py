from rest_framework import viewsets

from api.serializers import TrialSerializer
from trial.selectors import trial_list


class TrialViewSet(viewsets.ReadOnlyModelViewSet):
    """Trials with their sites, dose levels, eligibility criteria and visit schedule."""

    serializer_class = TrialSerializer
    queryset = trial_list()
    lookup_field = "registry_id"
    lookup_value_regex = "[A-Za-z0-9_-]+"
