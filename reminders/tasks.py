from celery import shared_task
from django.conf import settings

from core.actors import BEAT, REMINDERS, system_actor
from core.history import acting_as
from reminders import services

_worker_actor: dict[str, object] = {}  # a worker process's system:reminders, looked up once


def _delivery_actor(request):
    """``system:reminders``. A worker process looks it up once (one query less per delivery); an eager or direct
    call (tests, whose database is rolled back between them) looks it up every time."""
    if getattr(request, "is_eager", False) or not getattr(request, "hostname", None):
        return system_actor(REMINDERS)
    if REMINDERS not in _worker_actor:
        _worker_actor[REMINDERS] = system_actor(REMINDERS)
    return _worker_actor[REMINDERS]


@shared_task(name="reminders.tasks.deliver_reminder", ignore_result=True, bind=True)
def deliver_reminder(self, reminder_id: int) -> str:
    """Send one claimed reminder. Safe to run twice: the row's state, read under its lock, decides."""
    actor = _delivery_actor(self.request)
    with acting_as(actor, "Reminder delivery task"):
        return services.reminder_deliver(reminder_id=reminder_id, by=actor)


@shared_task(name="reminders.tasks.deliver_reminders", ignore_result=True, bind=True)
def deliver_reminders(self, reminder_ids: list[int]) -> dict:
    """Send a batch of claimed reminders (``REMINDER_DELIVERY_BATCH`` of one sweep batch) over one mail
    connection. Safe to run twice: each row's state, read under its lock, decides."""
    actor = _delivery_actor(self.request)
    with acting_as(actor, "Reminder delivery task"):
        outcomes = services.reminders_deliver(reminder_ids=reminder_ids, by=actor)
    return {str(key): value for key, value in outcomes.items()}


def delivery_chunks(reminder_ids: list[int], size: int | None = None) -> list[list[int]]:
    """A sweep batch's ids cut into delivery tasks of ``REMINDER_DELIVERY_BATCH`` rows."""
    size = max(1, size or settings.REMINDER_DELIVERY_BATCH)
    return [reminder_ids[start : start + size] for start in range(0, len(reminder_ids), size)]


def sweep(*, batch_size: int | None = None, by=None) -> services.SweepResult:
    """One sweep: each claimed batch goes out as delivery tasks of ``REMINDER_DELIVERY_BATCH`` rows, published
    through one producer in one round trip (kombu's publish batch: a Redis pipeline; a transport without one
    publishes them one by one)."""
    with deliver_reminders.app.producer_or_acquire() as producer:

        def publish_many(reminder_ids: list[int]) -> None:
            chunks = delivery_chunks(reminder_ids)
            with producer.batch(max_size=len(chunks) + 1):
                for chunk in chunks:
                    deliver_reminders.apply_async((chunk,), retry=False, producer=producer)

        return services.reminders_sweep(publish_many=publish_many, batch_size=batch_size, by=by)


@shared_task(name="reminders.tasks.sweep_due_reminders", ignore_result=True)
def sweep_due_reminders() -> dict:
    """The beat sweep: claim due reminders in batches; after each batch commits, its delivery tasks."""
    actor = system_actor(BEAT)
    with acting_as(actor, "Scheduled task reminders.tasks.sweep_due_reminders"):
        result = sweep(by=actor)
    return {"claimed": result.claimed, "batches": result.batches, "published": result.published}
