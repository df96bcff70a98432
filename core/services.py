from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.models import Heartbeat


def heartbeat_record(*, worker: str) -> Heartbeat:
    """Record that ``worker`` ran the heartbeat now (an upsert keyed on the worker name)."""
    now = timezone.now()
    with transaction.atomic():
        beat, created = Heartbeat.objects.select_for_update().get_or_create(
            worker=worker, defaults={"last_seen_at": now, "beats": 1}
        )
        if not created:
            Heartbeat.objects.filter(pk=beat.pk).update(last_seen_at=now, beats=F("beats") + 1)
            beat.refresh_from_db()
    return beat
