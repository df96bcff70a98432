"""Free text released to sponsors after review (issue 12, item 8).

Staff may type an identifier into any free text (a verbatim term, a reason, a description), so sponsors see
it as null (``api.fields.StaffTextField``) unless a data manager has reviewed that record's text and released
it. A model names its free-text fields in ``free_text_fields``; a review stores a digest of their values, so
a later change of the text withholds it again until it is reviewed anew.
"""

import hashlib
import json
from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from core.errors import ErrorCode, InvalidInput, require_permission
from core.models import FreeTextReview

__all__ = ["free_text_digest", "free_text_fields", "free_text_mark_reviewed", "free_text_released"]


def free_text_fields(model) -> tuple[str, ...]:
    return tuple(getattr(model, "free_text_fields", ()))


def free_text_digest(record: models.Model) -> str:
    values = [getattr(record, name) or "" for name in free_text_fields(type(record))]
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()


def free_text_mark_reviewed(*, record: models.Model, by, reason: str) -> FreeTextReview:
    """Release ``record``'s free text, as it reads now, to sponsors."""
    require_permission(by, "core.review_free_text", "release free text to sponsors (data managers only)")
    model = type(record)._meta.concrete_model
    if not free_text_fields(model):
        raise InvalidInput(ErrorCode.INVALID, "This record has no free text to review.", {"record": ["No free text."]})
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(
            ErrorCode.REASON_REQUIRED, "Say what the review found (no identifiers).", {"reason": ["Required."]}
        )
    with transaction.atomic():
        current = model.objects.select_for_update().get(pk=record.pk)  # the text as it is committed, held still
        return FreeTextReview.objects.create(
            content_type=ContentType.objects.get_for_model(model),
            object_id=current.pk,
            text_digest=free_text_digest(current),
            reviewed_by=by,
            reviewed_at=timezone.now(),
            reason=reason,
        )


def free_text_released(records: Iterable[models.Model]) -> set[tuple[type, int]]:
    """(model, pk) of each record whose latest review matches its text now: one query per model."""
    by_model: dict[type, dict[int, models.Model]] = {}
    for record in records:
        model = type(record)._meta.concrete_model
        if free_text_fields(model):
            by_model.setdefault(model, {})[record.pk] = record
    released = set()
    for model, rows in by_model.items():
        latest: dict[int, str] = {}
        reviews = FreeTextReview.objects.filter(
            content_type=ContentType.objects.get_for_model(model), object_id__in=list(rows)
        ).order_by("object_id", "reviewed_at", "pk")
        for object_id, digest in reviews.values_list("object_id", "text_digest"):
            latest[object_id] = digest  # the last one wins
        released |= {(model, pk) for pk, digest in latest.items() if free_text_digest(rows[pk]) == digest}
    return released
