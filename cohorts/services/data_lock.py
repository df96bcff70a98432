"""The data lock: a closed cohort's clinical records are read-only, except for a data manager's correction.

When the committee's decision closes a cohort, the records it decided on are locked (database closure in
SCDM's Good Clinical Data Management Practices; each correction audited, 21 CFR 11.10(e)):

- every infusion of the cohort, with its drip-rate readings, vital signs and interruptions;
- the adverse events and protocol deviations recorded before the cohort closed (their follow-ups, DLT
  decisions, assessments and closure included);
- the visits of the DLT window (target on or before the end of the participant's window).

New information stays recordable by the site: an adverse event or a deviation reported after the close
(a new record, after the data cut), and the visits after the DLT window (M3, M6, M12).

``data_lock_check`` is the one guard; every service that edits such a record calls it under the record's
row lock. A data manager (``cohorts.correct_locked_data``) may correct a locked record, with a reason; the
history row says "Correction of locked data". Anyone else is refused with ``data_locked``.
"""

from cohorts.models import Cohort, Participant
from cohorts.selectors import data_locked_cohort
from core.errors import ErrorCode, InvalidInput, RuleViolation, require_permission

CORRECT_LOCKED_DATA = "cohorts.correct_locked_data"
CORRECTION_PREFIX = "Correction of locked data"


def data_lock_check(
    *,
    participant: Participant,
    record=None,
    by=None,
    reason: str = "",
    perm: str | None = None,
    action: str = "",
    cohort: Cohort | None = None,
) -> str:
    """Refuse an edit of locked data unless a data manager corrects it with a reason; return the reason to audit.

    ``perm``/``action`` is the role permission the edit needs while the data are not locked (checked here then,
    so that a data manager, who holds none of these, passes only for a locked record). ``cohort``: the already
    locked cohort row, when the caller holds it.
    """
    locked = data_locked_cohort(participant, record=record, cohort=cohort)
    if locked is None:
        if perm:
            require_permission(by, perm, action)
        return reason
    if by is None or not by.has_perm(CORRECT_LOCKED_DATA):
        raise RuleViolation(
            ErrorCode.DATA_LOCKED,
            f"{locked} is closed: its clinical records are locked. A data manager can correct them, with a reason.",
        )
    if not (reason or "").strip():
        raise InvalidInput(
            ErrorCode.REASON_REQUIRED,
            "Give the reason for correcting locked data; it is kept in the audit trail.",
            {"reason": ["Required."]},
        )
    return f"{CORRECTION_PREFIX} ({locked} closed): {reason.strip()}"
