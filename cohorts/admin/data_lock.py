"""The data lock in the admin: a closed cohort's clinical records are read-only (``cohorts.services.data_lock``)."""

from cohorts import selectors, services


class DataLockAdminMixin:
    """A record the data lock covers opens read-only, except for a data manager, whose save goes through the
    service with the reason for change (the service's guard decides again)."""

    def has_change_permission(self, request, obj=None):
        if obj is not None and selectors.data_locked_cohort(obj.participant, record=obj) is not None:
            return request.user.has_perm(services.CORRECT_LOCKED_DATA)
        return super().has_change_permission(request, obj)
