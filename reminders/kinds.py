"""The kinds of reminder: who receives each, whether it is a safety kind, and what it says (pure, no Django).

A safety kind (reporting clocks, DLT decisions, signatures, a decision that took effect, a signing
lockout) cannot be muted: the database refuses a mute of one (``reminder_mute_non_safety_kind``).
Lead times are protocol parameters (``trial.Trial``, docs/protocol.md); this table only names them.
Recipients are a role or, for kinds marked ``per_user``, one user (the committee member whose signature is
awaited, the locked-out signer). A role's recipients are the active users of that group who see the reminder's
site in ``trial.access``: assigned to the site, or unscoped (``trial.view_every_site``: the Safety committee,
the Data manager). A ``trial_wide`` kind (a review opened, a decision that took effect, a sentinel or stagger
hold of a cohort) concerns every site of its trial (its site only gives the time zone): its recipients are the
role's users who see something of the trial. A reminder with neither trial nor site (an integrity alert) goes
to every active user of the role.
"""

from dataclasses import dataclass

SITE_STAFF = "Site staff"
INVESTIGATOR = "Investigator"
SAFETY_COMMITTEE = "Safety committee"
DATA_MANAGER = "Data manager"


@dataclass(frozen=True)
class Kind:
    key: str
    title: str
    role: str  # the recipients' role; empty for a per-user kind
    safety: bool
    text: str  # what the message says, with {label} (the subject) and {when} (its moment, in the site's zone)
    trial_wide: bool = False  # about the trial (every site of it), not about one site's participant

    @property
    def per_user(self) -> bool:
        return not self.role


_KINDS = (
    Kind("visit-window-opens", "Visit window opens", SITE_STAFF, False,
         "The window of {label} opens on {when}."),
    Kind("visit-window-closes", "Visit window closes today", SITE_STAFF, False,
         "The window of {label} closes today ({when}); the visit is not recorded yet."),
    Kind("visit-missed", "Visit missed", SITE_STAFF, False,
         "{label} was not recorded by the end of its window ({when})."),
    Kind("sentinel-ended", "Sentinel observation ended", SITE_STAFF, False,
         "The sentinel observation of {label} ended at {when}: the rest of the cohort may be dosed.", True),
    Kind("stagger-ended", "Stagger hold ended", SITE_STAFF, False,
         "The stagger hold of {label} ended at {when}: the next participant may be dosed.", True),
    Kind("dlt-decision", "DLT candidate awaits your decision", INVESTIGATOR, True,
         "{label} is a DLT candidate since {when} and waits for an investigator's decision."),
    Kind("review-opened", "Safety review opened", SAFETY_COMMITTEE, True,
         "{label} opened at {when}: every DLT window of the cohort is complete.", True),
    Kind("review-signature", "A review awaits your signature", "", True,
         "{label} has a proposed decision (since {when}) and awaits your signature."),
    Kind("review-target", "Review target date is near", "", True,
         "{label} should be decided by {when}; your signature is still awaited."),
    Kind("decision-effective", "Committee decision took effect", SITE_STAFF, True,
         "{label} took effect at {when}.", True),
    Kind("sponsor-notice", "Sponsor notice due within 24 h", INVESTIGATOR, True,
         "{label}: the sponsor must be notified by {when}."),
    Kind("sponsor-notice-12h", "Sponsor notice: 12 h left", INVESTIGATOR, True,
         "{label}: the sponsor notice is due at {when} and is not recorded yet."),
    Kind("sponsor-notice-overdue", "Sponsor notice overdue", INVESTIGATOR, True,
         "{label}: the sponsor notice was due at {when} and is not recorded."),
    Kind("susar-report", "SUSAR report due", INVESTIGATOR, True,
         "{label} is due at {when}."),
    Kind("susar-report-overdue", "SUSAR report overdue", INVESTIGATOR, True,
         "{label} was due at {when} and is not recorded."),
    Kind("sae-follow-up", "Serious event follow-up", INVESTIGATOR, True,
         "{label} is not resolved; its follow-up was due at {when}."),
    Kind("reconsent", "Re-consent needed", SITE_STAFF, False,
         "{label}: a new consent version is in force since {when}; she must consent again."),
    Kind("signing-lockout", "Signing locked", "", True,
         "Your electronic signature is locked after repeated wrong passwords ({label}) until {when}."),
    Kind("integrity-alert", "Signature check failed", DATA_MANAGER, True,
         "{label} ({when}). What broke: Safety → Integrity alerts in the admin."),
    Kind("integrity-alert-chair", "Signature check failed", "", True,
         "{label} ({when}). What broke: Safety → Integrity alerts in the admin."),
)  # fmt: skip

KINDS: dict[str, Kind] = {kind.key: kind for kind in _KINDS}
KIND_CHOICES = [(kind.key, kind.title) for kind in _KINDS]
NON_SAFETY_KINDS = tuple(kind.key for kind in _KINDS if not kind.safety)
TRIAL_WIDE_KINDS = tuple(kind.key for kind in _KINDS if kind.trial_wide)


# Lead times: the trial's parameter when set, else these (docs/protocol.md gives each one's source).
LEAD_DEFAULTS = {
    "visit_reminder_days": 2,
    "review_target_days": 7,
    "review_reminder_days": 2,
    "report_reminder_days": 2,
    "sae_follow_up_days": 7,
}


def lead_days(name: str, value: int | None) -> int:
    """The trial's lead time ``name`` (``value`` as stored; empty means the default)."""
    return LEAD_DEFAULTS[name] if value is None else value


class UnknownKind(KeyError):
    pass


def kind_for(key: str) -> Kind:
    try:
        return KINDS[key]
    except KeyError:
        raise UnknownKind(key) from None


def retry_delay_seconds(attempt: int, *, base: int, cap: int = 3600) -> int:
    """Exponential backoff after the ``attempt``-th failure (1-based): base, 2·base, 4·base … at most ``cap``."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    return min(cap, base * 2 ** (attempt - 1))


def dedupe_key(subject: str, kind: str, *, user_id: int | None = None, stage: str = "") -> str:
    """``visit:42:visit-window-opens``; a per-user reminder adds ``:user:7``, a staged one ``:12h``."""
    key = f"{subject}:{kind}"
    if user_id is not None:
        key += f":user:{user_id}"
    if stage:
        key += f":{stage}"
    return key
