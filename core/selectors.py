from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from core.models import Heartbeat


@dataclass(frozen=True)
class HeartbeatStatus:
    last_seen_at: datetime | None
    worker: str | None
    age_seconds: float | None
    alive: bool


def heartbeat_status() -> HeartbeatStatus:
    """The newest heartbeat; alive when it is younger than three beat intervals."""
    beat = Heartbeat.objects.order_by("-last_seen_at").first()
    if beat is None:
        return HeartbeatStatus(None, None, None, False)
    age = (timezone.now() - beat.last_seen_at).total_seconds()
    return HeartbeatStatus(beat.last_seen_at, beat.worker, age, age < 3 * settings.HEARTBEAT_SECONDS)
