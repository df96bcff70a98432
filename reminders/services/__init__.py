"""Every write of the reminders app. Other apps call these names only (``from reminders import services``)."""

from reminders.services.bulk import reminders_schedule_many
from reminders.services.delivery import (
    SweepResult,
    format_moment,
    reminder_deliver,
    reminder_message,
    reminder_recipients,
    reminders_deliver,
    reminders_sweep,
)
from reminders.services.scheduling import (
    reminder_cancel,
    reminder_cancel_for_user,
    reminder_mute,
    reminder_schedule,
    reminder_send_again,
    reminder_unmute,
)

__all__ = [
    "SweepResult",
    "format_moment",
    "reminder_cancel",
    "reminder_cancel_for_user",
    "reminder_deliver",
    "reminder_message",
    "reminder_mute",
    "reminder_recipients",
    "reminder_schedule",
    "reminder_send_again",
    "reminder_unmute",
    "reminders_deliver",
    "reminders_schedule_many",
    "reminders_sweep",
]
