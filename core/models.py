import simple_history
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import models
from knox.models import AuthToken

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
# API tokens too: who issued or revoked which token (its key prefix and digest; never the token) and why. The
# rows come from ``core.tokens`` only, the one place that writes tokens.
simple_history.register(AuthToken, app="core", records_class=AuditedRecords)


class ApiToken(AuthToken):
    """An API token as the admin lists it (knox's row: a digest, never the token). Issued and revoked only by
    ``core.tokens``; these two permissions, not knox's add/delete, say who may."""

    class Meta:
        proxy = True
        verbose_name = "API token"
        permissions = [("issue_apitoken", "Can issue API tokens"), ("revoke_apitoken", "Can revoke API tokens")]

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.user})"


class LockoutRelease(models.Model):
    """A data manager unlocked an account before its lockout ran out: who, whose, which lock, when and why.

    Append-only (nothing edits or deletes a release; the database refuses UPDATE, DELETE and TRUNCATE:
    ``core.append_only``); the signing lock counts only the wrong passwords after the user's latest signing
    release, and the admin login's failures (django-axes) are reset.
    """

    append_only = True

    class Kind(models.TextChoices):
        LOGIN = "login", "Admin and dashboard login (too many wrong passwords)"
        SIGNING = "signing", "Signing (too many wrong passwords)"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    username = models.CharField(max_length=150, help_text="The account unlocked.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    released_at = models.DateTimeField()
    reason = models.TextField()

    class Meta:
        ordering = ["-released_at"]
        indexes = [models.Index(fields=["user", "kind", "released_at"])]
        permissions = [("release_lockout", "Can unlock a login or signing lockout")]
        constraints = [models.CheckConstraint(condition=~models.Q(reason=""), name="lockout_release_has_reason")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username} unlocked at {self.released_at:%Y-%m-%d %H:%M}"


class FreeTextReview(models.Model):
    """A data manager read a record's free text and found no identifiers: sponsors may see it as it was then.

    The review holds a digest of the record's free-text fields (``free_text_fields`` on its model) at the time;
    once the text changes the digest no longer matches and sponsors see null again, until a new review. Append-
    only (the database refuses UPDATE, DELETE and TRUNCATE): the row is its own audit record (who, when, why).
    """

    append_only = True

    content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    text_digest = models.CharField(max_length=64, help_text="SHA-256 of the free-text fields as reviewed")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField()
    reason = models.TextField()

    class Meta:
        ordering = ["-reviewed_at"]
        indexes = [models.Index(fields=["content_type", "object_id", "reviewed_at"])]
        permissions = [("review_free_text", "Can release reviewed free text to sponsors")]
        constraints = [models.CheckConstraint(condition=~models.Q(reason=""), name="freetextreview_has_reason")]

    def __str__(self) -> str:
        return f"Free text of {self.content_type.model} {self.object_id} reviewed at {self.reviewed_at:%Y-%m-%d %H:%M}"
