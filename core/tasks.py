from celery import shared_task

from core.services import heartbeat_record


@shared_task(name="core.tasks.heartbeat", bind=True)
def heartbeat(self) -> str:
    """Beat-scheduled proof that beat and a worker are alive; safe to run twice (an upsert)."""
    beat = heartbeat_record(worker=self.request.hostname or "eager")
    return beat.last_seen_at.isoformat()


@shared_task(name="core.tasks.ping")
def ping(value: str) -> str:
    """Round trip through the broker and the result backend."""
    return f"pong:{value}"
