"""The audit trail: every clinical model keeps who, when, what changed and why.

``audited_history()`` is the one way a model gets its history table; services pass the acting
user and the reason with ``audit()`` before saving.
"""

from django.db import models
from simple_history.models import HistoricalRecords


def audited_history(**kwargs) -> HistoricalRecords:
    """HistoricalRecords with a free-text reason for change (Part 11 audit trail)."""
    kwargs.setdefault("history_change_reason_field", models.TextField(null=True, blank=True))
    return HistoricalRecords(**kwargs)


def audit(instance: models.Model, *, by=None, reason: str | None = None) -> models.Model:
    """Attach who and why to ``instance`` for the history row its next save writes."""
    if by is not None:
        instance._history_user = by
    if reason:
        instance._change_reason = reason
    return instance
