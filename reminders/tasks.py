from celery import shared_task

from core.actors import BEAT, REMINDERS, system_actor
from core.history import acting_as
from reminders import services


@shared_task(name="reminders.tasks.deliver_reminder", ignore_result=True)
def deliver_reminder(reminder_id: int) -> str:
    """Send one claimed reminder. Safe to run twice: the row's state, read under its lock, decides."""
    actor = system_actor(REMINDERS)
    with acting_as(actor, "Reminder delivery task"):
        return services.reminder_deliver(reminder_id=reminder_id, by=actor)


def sweep(*, batch_size: int | None = None, by=None) -> services.SweepResult:
    """One sweep, publishing every delivery task through one producer (one broker connection)."""
    with deliver_reminder.app.producer_or_acquire() as producer:

        def publish(reminder_id: int) -> None:
            deliver_reminder.apply_async((reminder_id,), retry=False, producer=producer)

        return services.reminders_sweep(publish=publish, batch_size=batch_size, by=by)


@shared_task(name="reminders.tasks.sweep_due_reminders", ignore_result=True)
def sweep_due_reminders() -> dict:
    """The beat sweep: claim due reminders in batches, one delivery task per row after each batch commits."""
    actor = system_actor(BEAT)
    with acting_as(actor, "Scheduled task reminders.tasks.sweep_due_reminders"):
        result = sweep(by=actor)
    return {"claimed": result.claimed, "batches": result.batches, "published": result.published}
