from django.db import models


class Heartbeat(models.Model):
    """Last run of the beat-scheduled heartbeat task, one row per worker host.

    Proves that beat schedules and a worker executes: ``/healthz`` and the admin show it.
    """

    worker = models.CharField(max_length=200, unique=True)
    last_seen_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.worker} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
