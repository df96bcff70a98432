"""Every read of reminders: a reader's own (her user, or her roles), the data manager's log."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from reminders.models import Reminder


def reminders_for_user(user, *, model=Reminder) -> QuerySet[Reminder]:
    """The reminders addressed to ``user`` or to one of her roles, not cancelled. Nobody without
    ``reminders.view_reminder`` (sponsors) has any."""
    if not user.is_authenticated or not user.has_perm("reminders.view_reminder"):
        return model.objects.none()
    roles = list(user.groups.values_list("name", flat=True))
    return (
        model.objects.filter(Q(recipient_user=user) | Q(recipient_user__isnull=True, recipient_role__in=roles))
        .exclude(state=Reminder.State.CANCELLED)
        .select_related("trial", "site", "recipient_user")
    )


def open_reminders_for_user(user) -> QuerySet[Reminder]:
    """Due now and still needed: sent (or being sent, or failed) and its subject not resolved yet."""
    return reminders_for_user(user).filter(due_at__lte=timezone.now(), resolved_at__isnull=True)


def reminder_log() -> QuerySet[Reminder]:
    return Reminder.objects.select_related("trial", "site", "recipient_user")
