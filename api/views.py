from rest_framework import viewsets

from api.serializers import TrialSerializer
from trial.access import scope_trials
from trial.selectors import trial_list


class TrialViewSet(viewsets.ReadOnlyModelViewSet):
    """Trials with their sites, dose levels, eligibility criteria and visit schedule."""

    serializer_class = TrialSerializer
    queryset = trial_list()  # the permission class reads its model; get_queryset scopes it per user
    lookup_field = "registry_id"
    lookup_value_regex = "[A-Za-z0-9_-]+"

    def get_queryset(self):
        return scope_trials(trial_list(), self.request.user, trial="pk")
