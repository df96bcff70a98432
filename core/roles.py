"""The roles of the trial team and exactly the permissions each one holds.

``ROLE_PERMISSIONS`` is the single source of truth. Data migrations call ``sync_roles`` so that
every database has exactly these groups with exactly these permissions; a migration that adds
models adds a ``sync_roles`` step after it. Nobody but a superuser deletes clinical records.
"""

from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

SITE_STAFF = "Site staff"
INVESTIGATOR = "Investigator"
SAFETY_COMMITTEE = "Safety committee"
SPONSOR = "Sponsor"
DATA_MANAGER = "Data manager"
ROLES = (SITE_STAFF, INVESTIGATOR, SAFETY_COMMITTEE, SPONSOR, DATA_MANAGER)

PROTOCOL_MODELS = ("trial", "site", "doselevel", "eligibilitycriterion", "visitdefinition")
# Who works at which site, which sponsor reads which trial (trial.access): kept by the data manager.
ACCESS_MODELS = ("siteassignment", "trialassignment")


def _perms(app: str, actions: tuple[str, ...], models: tuple[str, ...]) -> set[str]:
    return {f"{app}.{action}_{model}" for action in actions for model in models}


COHORT_MODELS = (
    "participant",
    "screeningrecord",
    "fracture",
    "criterionassessment",
    "judgmentconfirmation",
    "gilbertsyndromediagnosis",
    "consentdocument",
    "consentrecord",
    "cohort",
    "enrollment",
)
INFUSION_MODELS = (
    "infusion",
    "dripratereading",
    "infusioninterruption",
    "vitalsigns",
    "followupvisit",
    "protocoldeviation",
)
# Opened by the system, decided by an investigator (cohorts.decide_losttofollowup): nobody adds or changes them.
FLAG_MODELS = ("losttofollowup",)
SAFETY_MODELS = ("adverseevent", "reportingclock", "ctcaeterm", "safetyreview", "signoff", "simulationreport")
# What staff record at the bedside and at screening (never delete; corrections are audited edits).
SCREENING_WRITES = _perms("cohorts", ("add", "change"), ("participant", "screeningrecord", "fracture", "consentrecord"))

_READ_PROTOCOL = _perms("trial", ("view",), PROTOCOL_MODELS)
_READ_COHORTS = _perms("cohorts", ("view",), COHORT_MODELS + INFUSION_MODELS + FLAG_MODELS)
_READ_SAFETY = _perms("safety", ("view",), SAFETY_MODELS)
BEDSIDE_WRITES = _perms("cohorts", ("add", "change"), INFUSION_MODELS) | _perms(
    "safety", ("add", "change"), ("adverseevent", "reportingclock")
)
# Sponsors see pseudonymised data only: the API never serialises identifiers for them.
_SPONSOR_READS = _perms(
    "cohorts",
    ("view",),
    (
        "participant",
        "cohort",
        "enrollment",
        "consentdocument",
        "infusion",
        "dripratereading",
        "followupvisit",
        "protocoldeviation",
    ),
) | _perms("safety", ("view",), ("adverseevent", "reportingclock", "safetyreview", "signoff", "ctcaeterm"))

# Staff roles start exports in the admin (a background job per export); what an export holds follows the view
# permissions above (exports/permissions.py). Sponsors export through the API only: they have no admin.
_EXPORT_JOBS = _perms("exports", ("add", "view"), ("exportjob",))
# Staff see their own reminders ("My reminders", GET /api/v1/reminders/); the data manager reads the whole log and
# sends a reminder again. Sponsors get none.
_OWN_REMINDERS = {"reminders.view_reminder"}
_REMINDER_LOG = {"reminders.view_reminder_log", "reminders.send_reminder_again"}

# A failed daily signature check (safety.IntegrityAlert): the data manager and the committee (the chair) read it.
_INTEGRITY_ALERTS = "safety.view_integrityalert"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    SITE_STAFF: frozenset(
        _READ_PROTOCOL
        | _READ_COHORTS
        | _READ_SAFETY
        | SCREENING_WRITES
        | BEDSIDE_WRITES
        | _EXPORT_JOBS
        | _OWN_REMINDERS
        | {"cohorts.add_enrollment"}
    ),
    # Investigators do what staff do, confirm judgment criteria, document Gilbert's syndrome (E14) and open a
    # trial's first cohort.
    INVESTIGATOR: frozenset(
        _READ_PROTOCOL
        | _READ_COHORTS
        | _READ_SAFETY
        | SCREENING_WRITES
        | BEDSIDE_WRITES
        | _EXPORT_JOBS
        | _OWN_REMINDERS
        | {
            "cohorts.add_enrollment",
            "cohorts.add_judgmentconfirmation",
            "cohorts.change_judgmentconfirmation",
            "cohorts.add_gilbertsyndromediagnosis",
            "cohorts.change_gilbertsyndromediagnosis",
            "cohorts.open_first_cohort",
            "cohorts.decide_losttofollowup",
            "safety.decide_dlt",
        }
    ),
    # The committee reads everything and signs reviews (safety.sign_review; the password is re-entered).
    SAFETY_COMMITTEE: frozenset(
        _READ_PROTOCOL
        | _READ_COHORTS
        | _READ_SAFETY
        | _EXPORT_JOBS
        | _OWN_REMINDERS
        | {"safety.sign_review", _INTEGRITY_ALERTS, "trial.view_every_site"}
    ),
    SPONSOR: frozenset(_READ_PROTOCOL | _SPONSOR_READS),
    # The data manager keeps the protocol's parameters and consent versions current (each change audited).
    DATA_MANAGER: frozenset(
        _READ_PROTOCOL
        | _READ_COHORTS
        | _READ_SAFETY
        | _perms("trial", ("add", "change"), PROTOCOL_MODELS)
        | _perms("trial", ("add", "change", "view"), ACCESS_MODELS)
        | {"trial.view_every_site"}  # site scoping (trial.access): the data manager sees every site
        | _perms("safety", ("add", "change"), ("ctcaeterm",))
        | {"safety.add_simulationreport"}  # records accepted operating characteristics, before the first cohort
        | _perms("cohorts", ("add", "change"), ("consentdocument",))
        | _EXPORT_JOBS
        | _OWN_REMINDERS
        | _REMINDER_LOG
        | {"core.view_heartbeat", "cohorts.correct_locked_data", _INTEGRITY_ALERTS}
        # API tokens: issued (shown once) and revoked in the admin, each audited (core.tokens).
        | {"core.view_apitoken", "core.issue_apitoken", "core.revoke_apitoken"}
        # Lockouts: sees the failed logins (django-axes) and unlocks a login or signing with a reason (core.lockouts).
        | {"core.view_lockoutrelease", "core.release_lockout", "axes.view_accessattempt", "axes.view_accessfailurelog"}
        # Free text: reads it for identifiers and releases it to sponsors (core.free_text), each release recorded.
        | {"core.review_free_text", "core.view_freetextreview"}
    ),
}


def sync_roles(apps, schema_editor=None) -> None:
    """Make the role groups hold exactly ``ROLE_PERMISSIONS`` (usable as a RunPython step)."""
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        perms = []
        for dotted in sorted(wanted):
            app_label, codename = dotted.split(".", 1)
            perm = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:  # models of a later migration get theirs in that migration's sync step
                perms.append(perm)
        group.permissions.set(perms)


def ensure_role_groups() -> None:
    """Recreate the role groups with exactly their permissions, with the live app registry.

    For tests: a TransactionTestCase flush empties auth_group, and the data migration that created the
    groups does not run again. (``sync_roles`` is for migrations and their historical models.)
    """
    existing = {
        f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")
    }
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([existing[name] for name in sorted(wanted) if name in existing])
