"""A review's frozen snapshot as a sponsor may read it (issue 12, item 8: least exposure).

The snapshot is frozen when the review opens and its digest is signed, so it is never changed. What a
sponsor reads is a copy: each staff free text in it (an adverse event's typed term, a DLT decision's reason,
a missed visit's reason) is null unless a data manager released that record's text (``core.free_text``) and
the frozen text is the text released; the investigator who decided a DLT is shown by role, never by name.
Coded CTCAE terms are not free text and stay. Staff read the snapshot as frozen.
"""

import copy

from cohorts.models import FollowUpVisit
from core.free_text import free_text_released
from safety.models import AdverseEvent

DECIDED_BY_ROLE = "Investigator"  # who decides a DLT candidate (safety.services: the investigator's role)


def snapshot_for_sponsor(snapshot: dict) -> dict:
    """A redacted copy of ``snapshot`` for a sponsor (four queries at most)."""
    return snapshots_for_sponsor([snapshot])[0]


def snapshots_for_sponsor(snapshots: list[dict]) -> list[dict]:
    """Redacted copies of ``snapshots`` (a page of reviews): four queries at most (the events, the visits and
    their releases), whatever their number."""
    shown = [copy.deepcopy(snapshot) for snapshot in snapshots]
    events = [x for s in shown for x in s.get("serious_events", []) + s.get("dlt_candidates", [])]
    candidates = [x for s in shown for x in s.get("dlt_candidates", [])]
    visits = [x for s in shown for x in s.get("unrecorded_visits", [])]
    ae_ids, visit_ids = {x["id"] for x in events}, {x["id"] for x in visits}
    records = {
        **{("ae", e.pk): e for e in AdverseEvent.objects.filter(pk__in=ae_ids).select_related("ctcae_term")},
        **{("visit", v.pk): v for v in FollowUpVisit.objects.filter(pk__in=visit_ids)},
    } if ae_ids or visit_ids else {}  # fmt: skip
    released = free_text_released(records.values())

    def released_text(kind: str, pk: int, value, fields: tuple[str, ...]):
        if not value:
            return value
        record = records.get((kind, pk))
        if record is None:
            return None
        if kind == "ae" and record.ctcae_term and value == record.ctcae_term.term:
            return value  # a coded term: not free text
        ok = (type(record), record.pk) in released and value in {getattr(record, f) for f in fields}
        return value if ok else None

    for entry in events:
        entry["term"] = released_text("ae", entry["id"], entry.get("term"), ("ctcae_term_text", "verbatim_term"))
    for entry in candidates:
        entry["reason"] = released_text("ae", entry["id"], entry.get("reason"), ("dlt_reason",))
        if entry.get("decided_by"):
            entry["decided_by"] = DECIDED_BY_ROLE
    for entry in visits:
        entry["missed_reason"] = released_text("visit", entry["id"], entry.get("missed_reason"), ("missed_reason",))
    return shown
