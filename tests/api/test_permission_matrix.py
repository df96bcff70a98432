"""The permission matrix (issue 12): every API endpoint × every role × every method, and every admin page.

The endpoints are not listed by hand: they come from the URL resolver (every route under ``/api/v1/``, custom
actions included), so an endpoint without a row in ``API`` fails ``test_every_api_endpoint_has_a_row``. Each row
says, per method, which roles may call it; every other (role, method) must be refused: 401 without credentials,
403 (the role lacks the permission) or 405 (the endpoint does not take the method) otherwise. An allowed call is
sent with an empty JSON body, so an allowed write may answer 400 or 409: it was not refused by permission. The
services check the same permission codes again (``api/permissions.py``); this table is the outside view.

One trial is built once for the module (a cohort in review, an adverse event with its reporting clock, a
deviation, a lost-to-follow-up flag, reminders) inside a transaction that is rolled back at the end; each role is
one test.
"""

import re

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cohorts import services as cohort_services
from cohorts.models import (
    ConsentDocument,
    ConsentRecord,
    FollowUpVisit,
    LostToFollowUp,
    Participant,
    ProtocolDeviation,
)
from core.roles import DATA_MANAGER, INVESTIGATOR, ROLE_PERMISSIONS, SAFETY_COMMITTEE, SITE_STAFF, SPONSOR
from reminders.kinds import KIND_CHOICES
from reminders.models import Reminder
from reminders.selectors import reminders_for_user
from safety import services as safety_services
from tests.cohorts.test_infusions_support import DAY, T0, enrolled_cohort, frozen, infuse_cohort, record_visits
from tests.dashboard.seed import record_event
from tests.factories import UserFactory, assign_existing_users
from tests.safety.test_escalation_gate import committee
from tests.safety.test_review_decisions import WINDOWS
from trial.models import Trial
from trial.services import protocol_load

pytestmark = pytest.mark.django_db

PROTOCOL_FILE = settings.BASE_DIR / "trial" / "protocols" / "NCT06949137.json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# The roles, as the people who hold them (core/roles.py). Coordinator and nurse are both site staff.
ROLES = ("coordinator", "nurse", "investigator", "member", "chair", "data_manager", "sponsor", "anonymous")
READERS = frozenset(ROLES) - {"anonymous"}
STAFF = READERS - {"sponsor"}  # identifiable records (consent, screening, eligibility), flags, reminders
BEDSIDE = frozenset({"coordinator", "nurse", "investigator"})  # record at the bedside and at screening
INVESTIGATOR_ONLY = frozenset({"investigator"})
COMMITTEE = frozenset({"member", "chair"})
CHAIR = frozenset({"chair"})

# URL name → method → the roles that may call it. Anything not listed is refused.
API: dict[str, dict[str, frozenset]] = {
    "api-root": {"GET": READERS},
    # The protocol.
    "trial-list": {"GET": READERS},
    "trial-detail": {"GET": READERS},
    "trial-summary": {"GET": READERS},
    "escalation-history": {"GET": READERS},
    "trial-open-first-cohort": {"POST": INVESTIGATOR_ONLY},
    # Participants, screening, consent.
    "participant-list": {"GET": READERS, "POST": BEDSIDE},
    "participant-detail": {"GET": READERS},
    "participant-screening": {"GET": STAFF, "PUT": BEDSIDE, "PATCH": BEDSIDE},
    "participant-eligibility": {"GET": STAFF},
    "participant-judgments": {"POST": INVESTIGATOR_ONLY},
    "participant-gilbert": {"POST": INVESTIGATOR_ONLY},
    "participant-withdraw": {"POST": BEDSIDE},
    "consent-list": {"GET": STAFF, "POST": BEDSIDE},
    "consent-detail": {"GET": STAFF},
    "consent-document-list": {"GET": READERS},
    "consent-document-detail": {"GET": READERS},
    # Cohorts and enrollment.
    "cohort-list": {"GET": READERS},
    "cohort-detail": {"GET": READERS},
    "cohort-enrollments": {"GET": READERS, "POST": BEDSIDE},
    # Infusions (``hold`` is a read: may the next infusion start?).
    "infusion-list": {"GET": READERS, "POST": BEDSIDE},
    "infusion-detail": {"GET": READERS},
    "infusion-hold": {"GET": READERS},
    "infusion-readings": {"POST": BEDSIDE},
    "infusion-vitals": {"POST": BEDSIDE},
    "infusion-interruptions": {"POST": BEDSIDE},
    "infusion-resume": {"POST": BEDSIDE},
    "infusion-stop-early": {"POST": BEDSIDE},
    "infusion-complete": {"POST": BEDSIDE},
    # Visits, deviations, lost to follow-up.
    "followupvisit-list": {"GET": READERS},
    "followupvisit-detail": {"GET": READERS},
    "followupvisit-complete": {"POST": BEDSIDE},
    "followupvisit-miss": {"POST": BEDSIDE},
    "deviation-list": {"GET": READERS, "POST": BEDSIDE},
    "deviation-detail": {"GET": READERS, "PATCH": BEDSIDE},
    "lost-to-follow-up-list": {"GET": STAFF},
    "lost-to-follow-up-detail": {"GET": STAFF},
    "lost-to-follow-up-confirm": {"POST": INVESTIGATOR_ONLY},
    "lost-to-follow-up-dismiss": {"POST": INVESTIGATOR_ONLY},
    # Safety: adverse events, DLT decisions, reporting clocks, reviews and signatures.
    "adverse-event-list": {"GET": READERS, "POST": BEDSIDE},
    "adverse-event-detail": {"GET": READERS, "PATCH": BEDSIDE},
    "adverse-event-dlt-decision": {"POST": INVESTIGATOR_ONLY},
    "reporting-clock-list": {"GET": READERS},
    "reporting-clock-detail": {"GET": READERS},
    "reporting-clock-report": {"POST": BEDSIDE},
    "review-list": {"GET": READERS, "POST": CHAIR},
    "review-detail": {"GET": READERS},
    "review-propose": {"POST": COMMITTEE},
    "review-sign": {"POST": COMMITTEE},
    "review-dossier-json": {"GET": READERS},
    "review-dossier-pdf": {"GET": READERS},
    # Exports (what they hold follows the reader's view permissions and sites).
    "export-fhir": {"GET": READERS},
    "export-sdtm": {"GET": READERS},
    "export-define": {"GET": READERS},
    # A data manager releases a record's reviewed free text to sponsors (core.free_text).
    "free-text-review": {"POST": frozenset({"data_manager"})},
    # Reminders addressed to the reader; sponsors have none.
    "reminder-list": {"GET": STAFF},
    "reminder-detail": {"GET": STAFF},
}

_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")
# The first path segment after /api/v1/ names the record a ``pk`` refers to.
RECORDS = {
    "consents": ConsentRecord,
    "consent-documents": ConsentDocument,
    "deviations": ProtocolDeviation,
    "lost-to-follow-up": LostToFollowUp,
    "participants": Participant,
    "visits": FollowUpVisit,
}


def api_routes(patterns=None, prefix: str = "") -> dict[str, str]:
    """URL name → route of every view under api/v1/ (the router's format-suffix twins aside)."""
    found = {}
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found |= api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/v1/") and "format" not in route:
            found[pattern.name] = route
    return found


def _path(route: str, *, world: dict, user) -> str:
    """The route with each parameter set to a record of the world that the user may read."""
    resource = route.removeprefix("api/v1/").lstrip("^").split("/")[0]

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name == "registry_id":
            return world["trial"].registry_id
        if name == "domain":
            return "AE"
        if resource == "reminders":  # a reminder addressed to the reader (another's is a 404 for her)
            mine = reminders_for_user(user).first() if user else None
            return str((mine or Reminder.objects.order_by("pk").first()).pk)
        if resource in world:
            return str(world[resource].pk)
        return str(RECORDS[resource].objects.order_by("pk").values_list("pk", flat=True).first())

    return "/" + _PARAMETER.sub(value, route.replace("^", "").replace("$", "").replace("\\", ""))


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One trial for every test of the module, built once and rolled back at the end."""
    fast = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "matrix"}},
    )
    with django_db_blocker.unblock(), fast:
        outer = transaction.atomic()
        outer.__enter__()
        try:
            protocol_load(path=PROTOCOL_FILE)
            trial = Trial.objects.get(registry_id="NCT06949137")
            call_command("load_ctcae_terms", verbosity=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
            members = committee()
            cohort, people = enrolled_cohort(trial)
            infusions = infuse_cohort(people)
            for person in people:
                person.refresh_from_db()
            day0 = people[0].dlt_window_start
            event = record_event(
                people[0], at=T0 + 3 * DAY, term="Fall", grade=3, relationship="not_related", onset_date=day0,
                serious=True, sae_hospitalisation=True, outcome="recovering",
            )  # fmt: skip
            coordinator = get_user_model().objects.get(username="coordinator")
            cohort_services.deviation_record(
                participant=people[0], category=ProtocolDeviation.Category.choices[0][0],
                severity=ProtocolDeviation.Severity.choices[0][0], description="For the permission matrix",
                occurred_on=day0, by=coordinator,
            )  # fmt: skip
            record_visits(people, until=(T0 + WINDOWS).date())
            with frozen(T0 + WINDOWS):
                (review,) = safety_services.reviews_open_due()
            visit = FollowUpVisit.objects.filter(participant=people[0]).order_by("pk").first()
            LostToFollowUp.objects.create(  # the sweep's flag, as it leaves one
                participant=people[0], last_missed_visit=visit, missed_visits=2, flagged_at=timezone.now()
            )
            users = {
                "coordinator": coordinator,
                "nurse": UserFactory(username="nurse", role=SITE_STAFF),
                "investigator": get_user_model().objects.get(username="investigator"),
                "member": members[1],
                "chair": members[0],
                "data_manager": UserFactory(username="dm", role=DATA_MANAGER),
                "sponsor": UserFactory(username="sp", role=SPONSOR, is_staff=False),  # sponsors have no admin
                "anonymous": None,
            }
            assign_existing_users(trial=trial)
            for username, user in users.items():  # one reminder addressed to each reader (the data manager has none)
                if user is not None and not reminders_for_user(user).exists():
                    Reminder.objects.create(
                        kind=KIND_CHOICES[0][0], dedupe_key=f"matrix:{username}", subject=f"matrix:{username}",
                        subject_label="For the permission matrix", recipient_user=user, due_at=timezone.now(),
                    )  # fmt: skip
            yield {
                "trial": trial,
                "users": users,
                "cohorts": cohort,
                "infusions": infusions[0],
                "adverse-events": event,
                "reporting-clocks": event.clocks.order_by("pk").first(),
                "reviews": review,
            }
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def test_every_api_endpoint_has_a_row_and_every_row_an_endpoint():
    routes = api_routes()
    assert len(routes) >= 50
    assert sorted(set(routes) - set(API)) == [], "add the new endpoint to the permission table"
    assert sorted(set(API) - set(routes)) == [], "remove the row of an endpoint that is gone"
    assert {method for row in API.values() for method in row} <= set(METHODS)
    assert {role for row in API.values() for roles in row.values() for role in roles} <= set(ROLES)


def _refused(role: str, status: int) -> bool:
    return status == 401 if role == "anonymous" else status in (403, 405)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_call_exactly_what_the_table_allows(world, role):
    user = world["users"][role]
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    wrong = {}
    for name, route in sorted(api_routes().items()):
        path = _path(route, world=world, user=user)
        for method in METHODS:
            allowed = role in API[name].get(method, ())
            response = client.generic(method, path, b"{}", content_type="application/json")
            status = response.status_code
            fine = (
                (status < 500 and status != 404 and not _refused(role, status)) if allowed else _refused(role, status)
            )
            if not fine:
                wrong[f"{method} {name}"] = ("allowed" if allowed else "refused", status)
    assert wrong == {}


# The admin: each role × each model's changelist and add page. Expected from the role's permissions
# (core/roles.py): the changelist with the view or change permission, the add page with the add permission.
# Admins that never add whatever the role holds (the record is made by a service elsewhere):
NEVER_ADDED = {
    "cohorts.cohort",
    "cohorts.criterionassessment",
    "cohorts.enrollment",
    "cohorts.losttofollowup",
    "core.apitoken",
    "cohorts.followupvisit",  # scheduled from the infusion
    "core.heartbeat",
    "reminders.reminder",
    "safety.reportingclock",
    "safety.safetyreview",
    "safety.signoff",
    "safety.integrityalert",
    "safety.simulationreport",
}
# Pages whose permission is not the model's own view/add permission.
PAGE_PERMISSION = {
    ("core.apitoken", "add"): "core.issue_apitoken",
    ("core.lockoutrelease", "add"): "core.release_lockout",
    ("reminders.reminder", "changelist"): "reminders.view_reminder_log",  # the whole log
    ("reminders.myreminder", "changelist"): "reminders.view_reminder",  # "My reminders"
}
# Pages that send every staff user on (the run page checks the permission itself).
REDIRECTS = {("safety.simulationreport", "add")}
GROUP = {
    "coordinator": SITE_STAFF,
    "nurse": SITE_STAFF,
    "investigator": INVESTIGATOR,
    "member": SAFETY_COMMITTEE,
    "chair": SAFETY_COMMITTEE,
    "data_manager": DATA_MANAGER,
}


def _admin_pages() -> list[tuple[str, str, str]]:
    pages = []
    for model in admin.site._registry:
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        for page in ("changelist", "add"):
            pages.append((label, page, reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}")))
    return sorted(pages)


def _admin_expected(role: str, user, label: str, page: str) -> str:
    if role in ("anonymous", "sponsor") or (label, page) in REDIRECTS:
        return "redirect"  # no staff account: the admin sends to its login page
    app, model = label.split(".")
    held = set(ROLE_PERMISSIONS[GROUP[role]]) | {f"{p.content_type.app_label}.{p.codename}" for p in
                                                  user.user_permissions.select_related("content_type")}  # fmt: skip
    if (label, page) in PAGE_PERMISSION:
        return "ok" if PAGE_PERMISSION[label, page] in held else "forbidden"
    if page == "changelist":
        return "ok" if {f"{app}.view_{model}", f"{app}.change_{model}"} & held else "forbidden"
    return "ok" if f"{app}.add_{model}" in held and label not in NEVER_ADDED else "forbidden"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_exactly_the_admin_pages_its_permissions_allow(world, role):
    user = world["users"][role]
    client = Client()
    if user is not None:
        client.force_login(user)
    wrong = {}
    for label, page, url in _admin_pages():
        status = client.get(url).status_code
        got = {200: "ok", 302: "redirect", 403: "forbidden"}.get(status, str(status))
        expected = _admin_expected(role, user, label, page)
        if got != expected:
            wrong[f"{label} {page}"] = (expected, got)
    assert wrong == {}
