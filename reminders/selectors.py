"""Every read of reminders: a reader's own (her user, or her roles at her sites), the data manager's log."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from reminders.kinds import TRIAL_WIDE_KINDS
from reminders.models import Reminder
from trial.access import scope_of


def reminders_for_user(user, *, model=Reminder) -> QuerySet[Reminder]:
    """The reminders addressed to ``user``, or to one of her roles where she would receive them (the same rule as
    the delivery, ``reminders.services.delivery``): at a site she sees in ``trial.access`` (a trial-wide kind: in
    a trial she sees), or of no trial and no site; not cancelled. Nobody without ``reminders.view_reminder``
    (sponsors) has any."""
    if not user.is_authenticated or not user.has_perm("reminders.view_reminder"):
        return model.objects.none()
    roles = list(user.groups.values_list("name", flat=True))
    to_role = Q(recipient_user__isnull=True, recipient_role__in=roles)
    scope = scope_of(user)
    if not scope.everything:
        at_site = Q(site__isnull=False) & ~Q(kind__in=TRIAL_WIDE_KINDS)
        to_role &= (at_site & (Q(site_id__in=scope.site_ids) | Q(trial_id__in=scope.whole_trial_ids))) | (
            ~at_site & (Q(trial_id__in=scope.trial_ids) | Q(trial__isnull=True, site__isnull=True))
        )
    return (
        model.objects.filter(Q(recipient_user=user) | to_role)
        .exclude(state=Reminder.State.CANCELLED)
        .select_related("trial", "site", "recipient_user")
    )


def open_reminders_for_user(user) -> QuerySet[Reminder]:
    """Due now and still needed: sent (or being sent, or failed) and its subject not resolved yet."""
    return reminders_for_user(user).filter(due_at__lte=timezone.now(), resolved_at__isnull=True)


def reminder_log() -> QuerySet[Reminder]:
    return Reminder.objects.select_related("trial", "site", "recipient_user")
