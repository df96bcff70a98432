"""The registry of every error code a client can receive, with its HTTP status(es) and what it means.

Services raise ``RuleViolation(ErrorCode.COHORT_FULL, "…")``; the wire value is the member's string
(``"cohort_full"``), stable forever: clients branch on it. ``docs/api.md`` lists every code, and the
OpenAPI schema's ``Error.code`` documents them all (``tests/core/test_error_codes.py`` holds both to
this table, and fails on a code raised anywhere that is not in it). A rule that needs a new code adds
it here first, with its meaning.

The table is data: one code a line, aligned.
"""

import enum


class ErrorCode(enum.StrEnum):
    """A stable machine code. ``statuses``: the HTTP statuses it comes with; ``meaning``: when."""

    statuses: tuple[int, ...]
    meaning: str

    def __new__(cls, value: str, statuses: tuple[int, ...], meaning: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.statuses = statuses
        member.meaning = meaning
        return member

    # fmt: off
    # --- 400: malformed input, nothing saved ---------------------------------------------------------------------
    INVALID = "invalid", (400,), "wrong shape, type or choice; NUL bytes; too long (`fields` says which)"
    PARSE_ERROR = "parse_error", (400,), "the request body is not valid JSON"
    NESTING_TOO_DEEP = "nesting_too_deep", (400,), "a JSON body nested more than 64 levels deep (not decoded)"
    BAD_REQUEST = "bad_request", (400,), "a request Django refuses before the API reads it (e.g. too many fields)"
    UNKNOWN_FIELDS = "unknown_fields", (400,), "a field the record does not have or that cannot change here"
    NOTE_REQUIRED = "note_required", (400,), "a Gilbert's syndrome diagnosis without its note"
    REASON_REQUIRED = "reason_required", (400,), "a change that needs a reason, without one"
    WRONG_SITE = "wrong_site", (400,), "the site does not take part in the trial"
    WRONG_TRIAL = "wrong_trial", (400, 409), "a consent form of another trial (400); enrolling into another trial (409)"
    SIGNED_IN_FUTURE = "signed_in_future", (400,), "a consent signed in the future"
    UNKNOWN_CRITERION = "unknown_criterion", (400,), "the trial has no such criterion"
    DATE_IN_FUTURE = "date_in_future", (400,), "a date or time after now (the site's date for dates)"
    DATE_BEFORE_INFUSION = "date_before_infusion", (400,), "a visit before the infusion day"
    STARTED_BEFORE_ENROLLMENT = "started_before_enrollment", (400,), "an infusion starting before the enrollment"
    END_BEFORE_START = "end_before_start", (400,), "an end, restart or interruption before its start or the last record"
    OBSERVED_OUTSIDE_INFUSION = "observed_outside_infusion", (400,), "a drip rate observed outside the infusion"
    RATE_NOT_POSITIVE = "rate_not_positive", (400,), "a drip rate of 0 or less"
    INVALID_RATE = "invalid_rate", (400,), "a drip rate that is not a number, or has more than 2 decimals"
    INVALID_VOLUME = "invalid_volume", (400,), "a volume that is not a number"
    VOLUME_NEGATIVE = "volume_negative", (400,), "a negative volume"
    VOLUME_NOT_GIVEN = "volume_not_given", (400,), "completing an infusion with 0 mL given"
    NO_RUNNING_TIME = "no_running_time", (400,), "finishing with a volume given in no running time"
    IMPLAUSIBLE_AVERAGE_RATE = "implausible_average_rate", (400,), "an average rate above 10 × the maximum, unconfirmed"
    INVALID_CELLS = "invalid_cells", (400,), "a cell count that is not a whole number in range"
    INVALID_DROP_FACTOR = "invalid_drop_factor", (400,), "a giving set outside 1–100 drops/mL"
    INVALID_VITALS = "invalid_vitals", (400,), "an implausible vital sign, systolic ≤ diastolic, or none"
    CORRECTIVE_ACTION_REQUIRED = "corrective_action_required", (400,), "closing a deviation without a corrective action"
    ONSET_BEFORE_CONSENT = "onset_before_consent", (400,), "an adverse event starting before consent"
    RECIPIENT_REQUIRED = "recipient_required", (400,), "reporting a clock without a recipient"
    INVALID_TIME = "invalid_time", (400,), "a report or follow-up time before awareness or in the future"
    INVALID_DECISION = "invalid_decision", (400,), "an unknown review decision"
    RATIONALE_REQUIRED = "rationale_required", (400,), "a decision, MTD or acknowledgement that needs a rationale"
    MTD_LEVEL_WITHOUT_MTD = "mtd_level_without_mtd", (400,), "an `mtd_level` with a decision other than `mtd`"
    INVALID_MEANING = "invalid_meaning", (400,), "a signature meaning other than `approve` / `reject`"
    PROTOCOL_FILE_MISSING = "protocol_file_missing", (400,), "`load_protocol`: no such file"
    PROTOCOL_FILE_MALFORMED = "protocol_file_malformed", (400,), "`load_protocol`: not a JSON object"
    PROTOCOL_FILE_INVALID = "protocol_file_invalid", (400,), "`load_protocol`: a field of the file is wrong"
    OTP_INVALID = "otp_invalid", (400,), "a wrong or stale authenticator code (admin two-factor login only)"

    # --- 401, 403, 404, 405, 406, 413, 415, 429, 500: who may call what, and how --------------------------------
    NOT_AUTHENTICATED = "not_authenticated", (401,), "no credentials"
    AUTHENTICATION_FAILED = "authentication_failed", (401,), "a bad or revoked token"
    TOKEN_EXPIRED = "token_expired", (401,), "the token's lifetime is over (sponsors 90 days, staff 30 by default)"
    PERMISSION_DENIED = "permission_denied", (403,), "the role lacks the permission"
    NOT_ASSIGNED = "not_assigned", (403,), "the record's site (or trial) is not one the user is assigned to"
    WRONG_PASSWORD = "wrong_password", (403,), "signing with a wrong password (logged; counts toward the lock)"
    SIGNING_LOCKED = "signing_locked", (403,), "5 wrong passwords in 30 minutes: signing is locked"
    TWO_FACTOR_REQUIRED = "two_factor_required", (403,), "a write with a session that logged in without its second factor"
    TOKEN_ISSUE_REFUSED = "token_issue_refused", (403,), "a token for an inactive account, or a superuser's by a non-superuser"
    NOT_FOUND = "not_found", (404,), "no such record"
    METHOD_NOT_ALLOWED = "method_not_allowed", (405,), "the path does not take this method"
    NOT_ACCEPTABLE = "not_acceptable", (406,), "the `Accept` header asks for something other than JSON"
    PAYLOAD_TOO_LARGE = "payload_too_large", (413,), "a request body over the API's limit (1 MiB; not read)"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", (415,), "a body that is not JSON where JSON is required"
    THROTTLED = "throttled", (429,), "too many failed authentications from this address: wait `Retry-After` seconds"
    ERROR = "error", (400,), "a framework refusal without a code of its own (not expected)"

    SERVER_ERROR = "server_error", (500,), "an unexpected failure; nothing was saved (logged; not expected)"

    # --- 409: a rule forbids it now, nothing saved -----------------------------------------------------------------
    RULE_VIOLATION = "rule_violation", (409,), "a rule forbids it (the generic code; services give a specific one)"
    CONFLICT = "conflict", (409,), "a database constraint refused a write that got past the service"
    DUPLICATE_SCREENING_NUMBER = "duplicate_screening_number", (409,), "the screening number is used in the trial"
    SCREENING_CLOSED = "screening_closed", (409,), "enrolled: screening data, judgments and diagnoses are frozen"
    NO_JUDGMENT_NEEDED = "no_judgment_needed", (409,), "the criterion is decided from data, not by judgment"
    CONSENT_VERSION_NOT_IN_FORCE = "consent_version_not_in_force", (409,), "the version was not in force that day"
    TRIAL_STOPPED = "trial_stopped", (409,), "the trial is stopped"
    ESCALATION_DECISION_REQUIRED = "escalation_decision_required", (409,), "a later cohort needs a signed decision"
    NO_DOSE_LEVELS = "no_dose_levels", (409,), "the trial has no dose levels"
    COHORT_ALREADY_ACTIVE = "cohort_already_active", (409,), "another cohort of the trial is still active"
    COHORT_TRANSITION_NOT_ALLOWED = "cohort_transition_not_allowed", (409,), "a cohort move the lifecycle forbids"
    COHORT_PAUSED = "cohort_paused", (409,), "a stopping rule paused the cohort"
    COHORT_FULL = "cohort_full", (409,), "the cohort holds its capacity"
    COHORT_NOT_OPEN = "cohort_not_open", (409,), "the cohort does not take enrollments, infusions or replacements now"
    ALREADY_ENROLLED = "already_enrolled", (409,), "the participant is enrolled already"
    NOT_ELIGIBLE = "not_eligible", (409,), "a criterion is unmet or lacks data"
    JUDGMENT_PENDING = "judgment_pending", (409,), "an investigator must still confirm a criterion"
    NO_CONSENT = "no_consent", (409,), "no current signed consent of the version in force"
    CANNOT_WITHDRAW = "cannot_withdraw", (409,), "the participant is withdrawn or completed"
    NOT_ENROLLED = "not_enrolled", (409,), "not enrolled, replaced, withdrawn or done: no infusion or replacement"
    ALREADY_REPLACED = "already_replaced", (409,), "the participant is marked replaced already"
    ALREADY_INFUSED = "already_infused", (409,), "the protocol's number of infusions was given"
    INFUSION_IN_PROGRESS = "infusion_in_progress", (409,), "the participant has an infusion in progress"
    PRODUCT_EXPIRED = "product_expired", (409,), "the product lot expired before the start"
    DOSE_MISMATCH = "dose_mismatch", (409,), "the product's cells are outside the dose level's tolerance"
    SENTINEL_HOLD = "sentinel_hold", (409,), "the sentinel is infused and observed alone first"
    STAGGER_HOLD = "stagger_hold", (409,), "the protocol's time between two infusions of a cohort"
    INFUSION_INTERRUPTED = "infusion_interrupted", (409,), "the infusion is interrupted: resume it first"
    INFUSION_NOT_IN_PROGRESS = "infusion_not_in_progress", (409,), "the infusion has not started or is finished"
    NOT_INTERRUPTED = "not_interrupted", (409,), "the infusion is not interrupted"
    VISIT_ALREADY_RECORDED = "visit_already_recorded", (409,), "the visit is recorded already"
    PARTICIPANT_TRANSITION_NOT_ALLOWED = (
        "participant_transition_not_allowed",
        (409,),
        "a move of a participant's status that her lifecycle forbids",
    )
    LOST_TO_FOLLOW_UP_NOT_PENDING = (
        "lost_to_follow_up_not_pending",
        (409,),
        "the lost-to-follow-up flag is decided already",
    )
    DEVIATION_CLOSED = "deviation_closed", (409,), "a closed deviation is final"
    DATA_LOCKED = "data_locked", (409,), "the cohort is closed: its clinical records are locked (data manager only)"
    NOT_A_DLT_CANDIDATE = "not_a_dlt_candidate", (409,), "the event is not a DLT candidate"
    ALREADY_REPORTED = "already_reported", (409,), "the expedited report is recorded already"
    COHORT_NOT_OBSERVING = "cohort_not_observing", (409,), "a scheduled review needs an observing cohort"
    COHORT_NOT_ACTIVE = "cohort_not_active", (409,), "the chair calls reviews of active cohorts only"
    REVIEW_ALREADY_OPEN = "review_already_open", (409,), "the cohort has an open review"
    REVIEW_CLOSED = "review_closed", (409,), "the review is effective, rejected or withdrawn"
    REVIEW_SIGNED = "review_signed", (409,), "the review is signed: its decision cannot change"
    DLT_PENDING = "dlt_pending", (409,), "a DLT candidate awaits an investigator's decision"
    SNAPSHOT_STALE = "snapshot_stale", (409,), "DLTs changed since the review opened: a new review is needed"
    SNAPSHOT_TAMPERED = "snapshot_tampered", (409,), "the review's data no longer matches what was opened"
    DLT_WINDOWS_RUNNING = "dlt_windows_running", (409,), "a DLT window of the cohort is still running"
    NO_HIGHER_DOSE = "no_higher_dose", (409,), "the cohort's dose is the highest: no escalation"
    NO_LOWER_DOSE = "no_lower_dose", (409,), "the cohort's dose is the lowest: no de-escalation"
    DOSE_LEVEL_FULL = "dose_level_full", (409,), "another cohort would exceed the protocol's maximum per dose"
    NOT_PAUSED = "not_paused", (409,), "resume needs a paused cohort"
    NO_DECISION = "no_decision", (409,), "nothing proposed to sign yet"
    ALREADY_SIGNED = "already_signed", (409,), "the member signed this review already"
    SIGNER_NAME_MISSING = "signer_name_missing", (409,), "the signer's account has no full name"
    MTD_NOT_TREATED = "mtd_not_treated", (409,), "a declared MTD nobody was treated at"
    VISITS_UNRECORDED = "visits_unrecorded", (409,), "an overdue DLT-window visit is neither recorded nor acknowledged"
    SIMULATION_AFTER_FIRST_COHORT = "simulation_after_first_cohort", (409,), "a simulation report after the first cohort opened"
    SIMULATION_ALREADY_RECORDED = "simulation_already_recorded", (409,), "the scenario is recorded for this protocol version"
    REMINDER_NOT_MUTABLE = "reminder_not_mutable", (409,), "a safety reminder kind cannot be muted"
    REMINDER_NOT_FINISHED = "reminder_not_finished", (409,), "only a sent or failed reminder can be sent again"
    # fmt: on

    @classmethod
    def for_status(cls, status: int) -> list["ErrorCode"]:
        return [code for code in cls if status in code.statuses]
