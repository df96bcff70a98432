from celery import shared_task

from reminders import services


@shared_task(name="reminders.tasks.deliver_reminder", ignore_result=True)
def deliver_reminder(reminder_id: int) -> str:
    """Send one claimed reminder. Safe to run twice: the row's state, read under its lock, decides."""
    return services.reminder_deliver(reminder_id=reminder_id)


def _publish(reminder_id: int) -> None:
    deliver_reminder.apply_async((reminder_id,), retry=False)


@shared_task(name="reminders.tasks.sweep_due_reminders", ignore_result=True)
def sweep_due_reminders() -> dict:
    """The beat sweep: claim due reminders in batches, one delivery task per row after each batch commits."""
    result = services.reminders_sweep(publish=_publish)
    return {"claimed": result.claimed, "batches": result.batches, "published": result.published}
