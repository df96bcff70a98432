import simple_history
from django.contrib.auth.models import Group, User
from django.db import models

from core.history import AuditedRecords


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


# Users, roles and permissions are audited like clinical data (21 CFR 11.10(d), (e)): who created a user,
# changed a name, gave or took a role or the chair's permission, deactivated an account, and why. The
# password hash and the last login are not copied into the history; a password change still writes a row.
simple_history.register(
    User,
    app="core",
    records_class=AuditedRecords,
    excluded_fields=["password", "last_login"],
    skip_fields=("last_login",),
    m2m_fields=["groups", "user_permissions"],
)
simple_history.register(Group, app="core", records_class=AuditedRecords, m2m_fields=["permissions"])
