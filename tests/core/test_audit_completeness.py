"""Every write path leaves a complete history (21 CFR 11.10(e); issue 12, item 2): a table of write paths.

Each row of ``PATHS`` drives one write path (a service, an admin page or action, an API verb, a task or a
command) on a world built before it. The check is generic, so it cannot be satisfied by the row itself:

- every row of an audited table that the path created, changed or deleted (compared field by field,
  before and after) has a new history row;
- every new history row, in any history table (the many-to-many ones too), names who (the path's acting
  user, or its named system actor) and why (a non-blank reason);
- the path changed at least one audited row (a path that writes nothing tests nothing).

A ``QuerySet.update()`` or bulk write on an audited model fails the first check; a service that forgets
``audit()`` fails the second. The README's security section quotes the number of paths.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from io import StringIO

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from cohorts import services as cs
from cohorts.models import Cohort, FollowUpVisit
from core.actors import system_actor
from core.roles import DATA_MANAGER, SAFETY_COMMITTEE, SITE_STAFF
from reminders import services as reminder_services
from reminders.models import Reminder
from reminders.tasks import deliver_reminder, deliver_reminders, sweep_due_reminders
from safety import services as ss
from safety.models import CtcaeTerm, ReportingClock
from safety.tasks import open_due_reviews
from tests.cohorts.test_infusions_support import DAY, HOUR, SH, T0, complete, enrolled_cohort, frozen, infuse, start
from tests.core.test_audit_trail import user_form
from tests.factories import ELIGIBLE_SCREENING, UserFactory, consent_document, eligible_participant, staff_users
from trial.models import Trial
from trial.services import protocol_load

pytestmark = pytest.mark.django_db
User = get_user_model()
NOW = T0 + 3 * DAY + 2 * HOUR  # the sentinel was infused at T0; her DLT window runs
PASSWORD = "correct horse battery staple"
MINUTE = dt.timedelta(minutes=1)
PROTOCOL = "trial/protocols/NCT06949137.json"


# --- the world a path runs in, built before the snapshot -------------------------------------------------


class World:
    """Each property builds one stage on the ones before (staff act as themselves, never as the test)."""

    @cached_property
    def trial(self) -> Trial:
        from django.conf import settings

        protocol_load(path=settings.BASE_DIR / PROTOCOL)
        return Trial.objects.get(registry_id="NCT06949137")

    @cached_property
    def staff(self):
        return staff_users()

    @property
    def coordinator(self):
        return self.staff[0]

    @property
    def investigator(self):
        return self.staff[1]

    @cached_property
    def manager(self):
        return UserFactory(username="dm", role=DATA_MANAGER)

    @cached_property
    def root(self):
        return User.objects.create_superuser("root", password=PASSWORD)

    @cached_property
    def committee(self) -> list:
        members = [
            UserFactory(username=f"src{i}", first_name="Member", last_name=f"N{i}", role=SAFETY_COMMITTEE)
            for i in range(3)
        ]
        members[0].user_permissions.add(Permission.objects.get(codename="chair_review"))
        return members

    @cached_property
    def drifted(self) -> Trial:
        """The trial with a value that differs from its file (set past the services: the setup, not a path)."""
        Trial.objects.filter(pk=self.trial.pk).update(stagger_hours=48)
        return self.trial

    @cached_property
    def registered(self):
        return cs.participant_register(
            trial=self.trial,
            site=self.trial.sites.get(),
            screening_number="R001",
            date_of_birth=dt.date(1960, 3, 15),
            sex="F",
            initials="WL",
            by=self.coordinator,
        )

    @cached_property
    def eligible(self):
        return eligible_participant(self.trial, number="E001")

    @cached_property
    def document(self):
        return consent_document(self.trial)

    @cached_property
    def cohort(self) -> Cohort:
        return cs.cohort_open_first(trial=self.trial, by=self.investigator)

    @cached_property
    def sentinel(self):
        with frozen(T0 - HOUR):
            cs.enroll_participant(participant=self.eligible, cohort=self.cohort, by=self.coordinator)
        self.eligible.refresh_from_db()
        return self.eligible

    @cached_property
    def running(self):
        return start(self.sentinel, T0)

    @cached_property
    def interrupted(self):
        with frozen(T0 + 10 * MINUTE):
            cs.infusion_interrupt(
                infusion=self.running, stopped_at=T0 + 10 * MINUTE, reason="Line kinked", by=self.coordinator
            )
        return self.running

    @cached_property
    def infusion(self):
        infusion = complete(self.running, T0 + HOUR)
        self.sentinel.refresh_from_db()
        return infusion

    @cached_property
    def visit(self) -> FollowUpVisit:
        return self.infusion.visits.get(code="D1")

    @cached_property
    def event(self):
        return ss.adverse_event_record(participant=self.infusion.participant, values=ae_values(), by=self.coordinator)

    @cached_property
    def candidate(self):
        values = ae_values(grade=3, relationship="possible", verbatim_term="Fever", ctcae_term_text="Fever")
        return ss.adverse_event_record(participant=self.infusion.participant, values=values, by=self.coordinator)

    @cached_property
    def clock(self) -> ReportingClock:
        values = ae_values(serious=True, sae_hospitalisation=True, verbatim_term="Pneumonia")
        event = ss.adverse_event_record(participant=self.infusion.participant, values=values, by=self.coordinator)
        return ReportingClock.objects.filter(adverse_event=event).order_by("due_at").first()

    @cached_property
    def deviation(self):
        return cs.deviation_record(
            participant=self.infusion.participant,
            category="other",
            severity="minor",
            description="Vital signs taken 20 minutes late",
            occurred_on=(T0 + HOUR).date(),
            by=self.coordinator,
        )

    @cached_property
    def review(self):
        self.infusion  # noqa: B018 - the cohort has an infused sentinel
        return ss.review_open_by_chair(cohort=self.cohort, reason="Chair's question", by=self.committee[0])

    @cached_property
    def proposed(self):
        ss.review_propose(
            review=self.review, decision="stop", rationale="Sponsor withdrew the product", by=self.committee[0]
        )
        self.review.refresh_from_db()
        return self.review

    @cached_property
    def observed(self) -> Cohort:
        """A cohort of three infused per protocol whose DLT windows are complete (for the beat task)."""
        cohort, people = enrolled_cohort(self.trial, prefix="B")
        infuse(people[0], T0)
        infuse(people[1], T0 + 8 * DAY)
        infuse(people[2], T0 + 9 * DAY + HOUR)
        cohort.refresh_from_db()
        return cohort

    @cached_property
    def reminder(self):
        """A reminder due a minute ago (as the scheduling service leaves it)."""
        self.trial  # noqa: B018
        return Reminder.objects.create(
            kind="visit-missed",
            dedupe_key="v:1",
            subject="visit:1",
            subject_label="D1 visit",
            recipient_role=SITE_STAFF,
            due_at=NOW - MINUTE,
        )

    @cached_property
    def claimed(self):
        """The reminder claimed by a sweep (its delivery task not run yet)."""
        reminder_services.reminders_sweep(publish=lambda reminder_id: None, now=NOW, by=system_actor("test"))
        self.reminder.refresh_from_db()
        return self.reminder

    @cached_property
    def term(self):
        return CtcaeTerm.objects.create(term="Fever", soc="General disorders and administration site conditions")


def ae_values(**overrides) -> dict:
    return {
        "verbatim_term": "Headache",
        "ctcae_term_text": "Headache",
        "onset_date": (T0 + 2 * DAY).date(),
        "grade": 1,
        "relationship": "unlikely",
        "expected": False,
        "outcome": "recovering",
        "site_aware_at": NOW - HOUR,
    } | overrides


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ok(response, *statuses):
    context = getattr(response, "context", None)
    errors = context and context.get("adminform") and context["adminform"].form.errors
    assert response.status_code in (statuses or (200, 201, 204, 302)), getattr(response, "data", errors or response)
    return response


def admin_client(client, user):
    client.force_login(user)
    return client


# --- the table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    kind: str  # service, admin, api, task, command
    name: str
    needs: tuple[str, ...]
    actor: str  # a World attribute, or "system:<name>"
    run: Callable


PATHS: list[Path] = []
# A recorded visit lets the follow-up lifecycle draw its consequences (the participant completes or is flagged
# lost to follow-up; a missed visit's deviation): those rows are written as the system actor, "automatic".
STAFF_AND_SWEEP = "coordinator,system:beat"


def path(kind: str, name: str, *needs: str, actor: str = "coordinator"):
    def register(run):
        PATHS.append(Path(kind, name, needs, actor, run))
        return run

    return register


# services: cohorts
path("service", "participant_register", "trial")(
    lambda w, c: cs.participant_register(
        trial=w.trial,
        site=w.trial.sites.get(),
        screening_number="N001",
        date_of_birth=dt.date(1961, 1, 1),
        sex="F",
        by=w.coordinator,
    )
)
path("service", "participant_update", "registered")(
    lambda w, c: cs.participant_update(
        participant=w.registered, values={"initials": "WX"}, reason="Typo in initials", by=w.coordinator
    )
)
path("service", "screening_record_save (new)", "registered")(
    lambda w, c: cs.screening_record_save(
        participant=w.registered,
        values={**ELIGIBLE_SCREENING, "screening_date": NOW.date()},
        fractures=[],
        by=w.coordinator,
    )
)
path("service", "screening_record_save (change)", "eligible")(
    lambda w, c: cs.screening_record_save(
        participant=w.eligible, values={"egfr": Decimal("20")}, by=w.coordinator, reason="eGFR re-measured"
    )
)
path("service", "judgments_confirm", "eligible", actor="investigator")(
    lambda w, c: cs.judgments_confirm(participant=w.eligible, answers={"I4": True}, by=w.investigator, note="Seen")
)
path("service", "gilbert_diagnosis_record", "eligible", actor="investigator")(
    lambda w, c: cs.gilbert_diagnosis_record(
        participant=w.eligible, documented=True, note="Genotyped UGT1A1*28", by=w.investigator
    )
)
path("service", "consent_record", "registered", "document")(
    lambda w, c: cs.consent_record(
        participant=w.registered, document=consent_document(w.trial), signed_at=NOW - HOUR, by=w.coordinator
    )
)
path("service", "participant_withdraw", "eligible")(
    lambda w, c: cs.participant_withdraw(participant=w.eligible, on=NOW.date(), reason="Moved away", by=w.coordinator)
)
path("service", "cohort_open_first", "trial", actor="investigator")(
    lambda w, c: cs.cohort_open_first(trial=w.trial, by=w.investigator)
)
path("service", "enroll_participant", "eligible", "cohort")(
    lambda w, c: cs.enroll_participant(participant=w.eligible, cohort=w.cohort, by=w.coordinator)
)
path("service", "infusion_start", "sentinel")(
    lambda w, c: cs.infusion_start(
        participant=w.sentinel,
        by=w.coordinator,
        started_at=NOW - HOUR,
        product_lot="HM-1",
        product_expiry=NOW + 5 * HOUR,
        volume_ml=Decimal("70"),
    )
)
path("service", "drip_rate_record", "running")(
    lambda w, c: cs.drip_rate_record(
        infusion=w.running,
        observed_at=T0 + 10 * dt.timedelta(minutes=1),
        drops_per_minute=Decimal("30"),
        by=w.coordinator,
    )
)
path("service", "vital_signs_record", "running")(
    lambda w, c: cs.vital_signs_record(
        infusion=w.running,
        timepoint="during",
        values={"heart_rate": 80},
        measured_at=T0 + 5 * dt.timedelta(minutes=1),
        by=w.coordinator,
    )
)
path("service", "infusion_interrupt", "running")(
    lambda w, c: cs.infusion_interrupt(
        infusion=w.running, stopped_at=T0 + 10 * dt.timedelta(minutes=1), reason="Line kinked", by=w.coordinator
    )
)
path("service", "infusion_complete", "running")(
    lambda w, c: cs.infusion_complete(
        infusion=w.running,
        ended_at=T0 + HOUR,
        volume_ml=Decimal("70"),
        cells_administered=w.running.cells_planned,
        by=w.coordinator,
    )
)
path("service", "infusion_stop_early", "running")(
    lambda w, c: cs.infusion_stop_early(
        infusion=w.running,
        ended_at=T0 + 30 * dt.timedelta(minutes=1),
        reason="Chills",
        cells_administered=w.running.cells_planned // 2,
        volume_ml=Decimal("35"),
        by=w.coordinator,
    )
)
path("service", "visit_complete", "visit", actor=STAFF_AND_SWEEP)(
    lambda w, c: cs.visit_complete(visit=w.visit, on=(T0 + DAY).date(), by=w.coordinator)
)
path("service", "visit_miss", "visit", actor=STAFF_AND_SWEEP)(
    lambda w, c: cs.visit_miss(visit=w.visit, reason="In hospital", by=w.coordinator)
)
path("service", "deviation_record", "infusion")(
    lambda w, c: cs.deviation_record(
        participant=w.sentinel,
        category="other",
        severity="minor",
        description="Late vitals",
        occurred_on=NOW.date(),
        by=w.coordinator,
    )
)
path("service", "deviation_update", "deviation")(
    lambda w, c: cs.deviation_update(
        deviation=w.deviation, by=w.coordinator, reason="Assessed", corrective_action="Retrained", close=True
    )
)
# services: safety
path("service", "adverse_event_record", "infusion")(
    lambda w, c: ss.adverse_event_record(participant=w.sentinel, values=ae_values(), by=w.coordinator)
)
path("service", "adverse_event_update", "event")(
    lambda w, c: ss.adverse_event_update(event=w.event, values={"grade": 2}, reason="Worse on day 3", by=w.coordinator)
)
path("service", "adverse_event_record (stopping rule: related death)", "infusion")(
    lambda w, c: ss.adverse_event_record(
        participant=w.sentinel, values=ae_values(grade=5, relationship="probable", outcome="fatal"), by=w.coordinator
    )
)
path("service", "dlt_decide", "candidate", actor="investigator")(
    lambda w, c: ss.dlt_decide(event=w.candidate, confirm=True, reason="Related grade 3", by=w.investigator)
)
path("service", "clock_complete", "clock")(
    lambda w, c: ss.clock_complete(clock=w.clock, done_at=NOW, reported_to="Sponsor safety desk", by=w.coordinator)
)
path("service", "review_open_by_chair", "infusion", "committee", actor="committee[0]")(
    lambda w, c: ss.review_open_by_chair(cohort=w.cohort, reason="Chair's question", by=w.committee[0])
)
path("service", "review_propose", "review", actor="committee[0]")(
    lambda w, c: ss.review_propose(review=w.review, decision="stop", rationale="Product withdrawn", by=w.committee[0])
)


def _sign_to_quorum(w, c):
    for member in w.committee:
        ss.review_sign(review=w.proposed, user=member, password=PASSWORD, meaning="approve")


path("service", "review_sign (quorum: the decision takes effect)", "proposed", actor="committee")(_sign_to_quorum)
path("service", "participant_mark_replaced", "infusion")(
    lambda w, c: cs.participant_mark_replaced(
        participant=w.sentinel, reason="Vomited the premedication", by=w.coordinator
    )
)

path("service", "infusion_resume", "interrupted")(
    lambda w, c: cs.infusion_resume(infusion=w.interrupted, restarted_at=T0 + 20 * MINUTE, by=w.coordinator)
)

# API verbs
path("api", "POST participants/", "trial")(
    lambda w, c: ok(
        api(w.coordinator).post(
            "/api/v1/participants/",
            {
                "trial": "NCT06949137",
                "site": w.trial.sites.get().pk,
                "screening_number": "A100",
                "date_of_birth": "1960-01-01",
                "sex": "F",
            },
            format="json",
        )
    )
)
path("api", "PUT participants/{id}/screening/", "registered")(
    lambda w, c: ok(
        api(w.coordinator).put(
            f"/api/v1/participants/{w.registered.pk}/screening/",
            {
                **{k: str(v) if isinstance(v, Decimal) else v for k, v in ELIGIBLE_SCREENING.items()},
                "screening_date": str(NOW.date()),
                "fractures": [],
            },
            format="json",
        )
    )
)
path("api", "POST participants/{id}/judgments/", "eligible", actor="investigator")(
    lambda w, c: ok(
        api(w.investigator).post(
            f"/api/v1/participants/{w.eligible.pk}/judgments/",
            {"code": "I4", "satisfied": True, "note": "ok"},
            format="json",
        )
    )
)
path("api", "POST participants/{id}/gilbert/", "eligible", actor="investigator")(
    lambda w, c: ok(
        api(w.investigator).post(
            f"/api/v1/participants/{w.eligible.pk}/gilbert/", {"documented": True, "note": "Genotyped"}, format="json"
        )
    )
)
path("api", "POST participants/{id}/withdraw/", "eligible")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/participants/{w.eligible.pk}/withdraw/", {"on": str(NOW.date()), "reason": "Moved"}, format="json"
        )
    )
)
path("api", "POST consents/", "registered", "document")(
    lambda w, c: ok(
        api(w.coordinator).post(
            "/api/v1/consents/",
            {
                "participant": w.registered.pk,
                "document": consent_document(w.trial).pk,
                "signed_at": (NOW - HOUR).isoformat(),
            },
            format="json",
        )
    )
)
path("api", "POST trials/{id}/open-first-cohort/", "trial", actor="investigator")(
    lambda w, c: ok(api(w.investigator).post("/api/v1/trials/NCT06949137/open-first-cohort/", {}, format="json"))
)
path("api", "POST cohorts/{id}/enrollments/", "eligible", "cohort")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/cohorts/{w.cohort.pk}/enrollments/", {"participant": w.eligible.pk}, format="json"
        )
    )
)
path("api", "POST infusions/{id}/readings/", "running")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/infusions/{w.running.pk}/readings/",
            {"observed_at": (T0 + 10 * dt.timedelta(minutes=1)).isoformat(), "drops_per_minute": "22"},
            format="json",
        )
    )
)
path("api", "POST infusions/{id}/complete/", "running")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/infusions/{w.running.pk}/complete/",
            {"ended_at": (T0 + HOUR).isoformat(), "cells_administered": w.running.cells_planned, "volume_ml": "70"},
            format="json",
        )
    )
)
path("api", "POST visits/{id}/complete/", "visit", actor=STAFF_AND_SWEEP)(
    lambda w, c: ok(
        api(w.coordinator).post(f"/api/v1/visits/{w.visit.pk}/complete/", {"on": str((T0 + DAY).date())}, format="json")
    )
)
path("api", "POST deviations/", "infusion")(
    lambda w, c: ok(
        api(w.coordinator).post(
            "/api/v1/deviations/",
            {
                "participant": w.sentinel.pk,
                "category": "other",
                "severity": "minor",
                "description": "Late",
                "occurred_on": str(NOW.date()),
            },
            format="json",
        )
    )
)
path("api", "PATCH deviations/{id}/", "deviation")(
    lambda w, c: ok(
        api(w.coordinator).patch(
            f"/api/v1/deviations/{w.deviation.pk}/", {"reason": "Assessed", "severity": "major"}, format="json"
        )
    )
)
path("api", "POST adverse-events/", "infusion")(
    lambda w, c: ok(
        api(w.coordinator).post(
            "/api/v1/adverse-events/",
            {
                "participant": w.sentinel.pk,
                "verbatim_term": "Headache",
                "ctcae_term_text": "Headache",
                "onset_date": str((T0 + 2 * DAY).date()),
                "grade": 1,
                "relationship": "unlikely",
            },
            format="json",
        )
    )
)
path("api", "PATCH adverse-events/{id}/", "event")(
    lambda w, c: ok(
        api(w.coordinator).patch(
            f"/api/v1/adverse-events/{w.event.pk}/", {"grade": 2, "reason": "Worse"}, format="json"
        )
    )
)
path("api", "POST adverse-events/{id}/dlt-decision/", "candidate", actor="investigator")(
    lambda w, c: ok(
        api(w.investigator).post(
            f"/api/v1/adverse-events/{w.candidate.pk}/dlt-decision/",
            {"confirm": False, "reason": "Unrelated"},
            format="json",
        )
    )
)
path("api", "POST reporting-clocks/{id}/report/", "clock")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/reporting-clocks/{w.clock.pk}/report/", {"reported_to": "Sponsor"}, format="json"
        )
    )
)
path("api", "POST reviews/", "infusion", "committee", actor="committee[0]")(
    lambda w, c: ok(
        api(w.committee[0]).post("/api/v1/reviews/", {"cohort": w.cohort.pk, "reason": "Question"}, format="json")
    )
)
path("api", "POST reviews/{id}/propose/", "review", actor="committee[0]")(
    lambda w, c: ok(
        api(w.committee[0]).post(
            f"/api/v1/reviews/{w.review.pk}/propose/", {"decision": "stop", "rationale": "Withdrawn"}, format="json"
        )
    )
)

path("api", "PATCH participants/{id}/screening/", "eligible")(
    lambda w, c: ok(
        api(w.coordinator).patch(
            f"/api/v1/participants/{w.eligible.pk}/screening/", {"egfr": "20", "reason": "Re-measured"}, format="json"
        )
    )
)
path("api", "POST infusions/", "sentinel")(
    lambda w, c: ok(
        api(w.coordinator).post(
            "/api/v1/infusions/",
            {
                "participant": w.sentinel.pk,
                "started_at": (NOW - HOUR).isoformat(),
                "product_lot": "HM-2",
                "product_expiry": (NOW + 5 * HOUR).isoformat(),
                "volume_ml": "70",
            },
            format="json",
        )
    )
)
path("api", "POST infusions/{id}/vitals/", "running")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/infusions/{w.running.pk}/vitals/",
            {"timepoint": "during", "measured_at": (T0 + 5 * MINUTE).isoformat(), "heart_rate": 78},
            format="json",
        )
    )
)
path("api", "POST infusions/{id}/interruptions/", "running")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/infusions/{w.running.pk}/interruptions/",
            {"stopped_at": (T0 + 10 * MINUTE).isoformat(), "reason": "Line kinked"},
            format="json",
        )
    )
)
path("api", "POST infusions/{id}/resume/", "interrupted")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/infusions/{w.interrupted.pk}/resume/",
            {"restarted_at": (T0 + 20 * MINUTE).isoformat()},
            format="json",
        )
    )
)
path("api", "POST infusions/{id}/stop-early/", "running")(
    lambda w, c: ok(
        api(w.coordinator).post(
            f"/api/v1/infusions/{w.running.pk}/stop-early/",
            {
                "ended_at": (T0 + 30 * MINUTE).isoformat(),
                "cells_administered": w.running.cells_planned // 2,
                "volume_ml": "35",
                "reason": "Chills",
            },
            format="json",
        )
    )
)
path("api", "POST visits/{id}/miss/", "visit", actor=STAFF_AND_SWEEP)(
    lambda w, c: ok(
        api(w.coordinator).post(f"/api/v1/visits/{w.visit.pk}/miss/", {"reason": "In hospital"}, format="json")
    )
)


def _sign_over_the_api(w, c):
    for member in w.committee:
        ok(
            api(member).post(
                f"/api/v1/reviews/{w.proposed.pk}/sign/", {"password": PASSWORD, "meaning": "approve"}, format="json"
            )
        )


path("api", "POST reviews/{id}/sign/ (three members: the decision takes effect)", "proposed", actor="committee")(
    _sign_over_the_api
)

# admin pages and actions
path("admin", "participant add", "trial")(
    lambda w, c: ok(
        admin_client(c, w.coordinator).post(
            reverse("admin:cohorts_participant_add"),
            {
                "trial": w.trial.pk,
                "site": w.trial.sites.get().pk,
                "screening_number": "M001",
                "initials": "LN",
                "date_of_birth": "1958-05-05",
                "sex": "F",
            },
        ),
        302,
    )
)
path("admin", "participant change (initials)", "registered")(
    lambda w, c: ok(
        admin_client(c, w.coordinator).post(
            reverse("admin:cohorts_participant_change", args=[w.registered.pk]),
            {
                "initials": "WX",
                "date_of_birth": "1960-03-15",
                "sex": "F",
                "change_reason": "Typo in the initials",
                "enrollments-TOTAL_FORMS": "0",
                "enrollments-INITIAL_FORMS": "0",
            },
        ),
        302,
    )
)
path("admin", "consent document add (data manager)", "trial", "manager", actor="manager")(
    lambda w, c: ok(
        admin_client(c, w.manager).post(
            reverse("admin:cohorts_consentdocument_add"),
            {"trial": w.trial.pk, "version": "2.0", "title": "ICF v2", "effective_from": "2026-11-01"},
        ),
        302,
    )
)
path("admin", "consent document change (data manager)", "document", "manager", actor="manager")(
    lambda w, c: ok(
        admin_client(c, w.manager).post(
            reverse("admin:cohorts_consentdocument_change", args=[consent_document(w.trial).pk]),
            {
                "trial": w.trial.pk,
                "version": "1.0",
                "title": "ICF",
                "effective_from": "2025-01-01",
                "effective_to": "2026-12-31",
                "change_reason": "Superseded at year end",
            },
        ),
        302,
    )
)
path("admin", "action: open the first cohort", "trial", actor="investigator")(
    lambda w, c: ok(
        admin_client(c, w.investigator).post(
            reverse("admin:trial_trial_changelist"), {"action": "open_first_cohort", "_selected_action": [w.trial.pk]}
        ),
        302,
    )
)
path("admin", "action: enroll into the open cohort", "eligible", "cohort")(
    lambda w, c: ok(
        admin_client(c, w.coordinator).post(
            reverse("admin:cohorts_participant_changelist"),
            {"action": "enroll_into_open_cohort", "_selected_action": [w.eligible.pk]},
        ),
        302,
    )
)
path("admin", "action: reject DLT (with its reason)", "candidate", actor="investigator")(
    lambda w, c: ok(
        admin_client(c, w.investigator).post(
            reverse("admin:safety_adverseevent_changelist"),
            {
                "action": "reject_dlt",
                "_selected_action": [w.candidate.pk],
                "apply": "1",
                "reason": "Unrelated after review",
            },
        ),
        302,
    )
)
path("admin", "CTCAE term add (data manager)", "manager", actor="manager")(
    lambda w, c: ok(
        admin_client(c, w.manager).post(
            reverse("admin:safety_ctcaeterm_add"),
            {"term": "Myalgia", "soc": "Musculoskeletal and connective tissue disorders", "meddra_code": ""},
        ),
        302,
    )
)
path("admin", "user change: a role given (superuser)", "root", "manager", actor="root")(
    lambda w, c: ok(
        admin_client(c, w.root).post(
            reverse("admin:auth_user_change", args=[w.manager.pk]),
            user_form(w.manager, groups=[Group.objects.get(name=SITE_STAFF).pk], change_reason="Also helps the site"),
        ),
        302,
    )
)

path("admin", "action: record the expedited report", "clock")(
    lambda w, c: ok(
        admin_client(c, w.coordinator).post(
            reverse("admin:safety_reportingclock_changelist"),
            {
                "action": "record_report",
                "_selected_action": [w.clock.pk],
                "apply": "1",
                "reported_to": "Sponsor pharmacovigilance",
                "done_at_0": str(timezone.localtime(NOW, SH).date()),
                "done_at_1": timezone.localtime(NOW, SH).strftime("%H:%M:%S"),
            },
        ),
        302,
    )
)
path("admin", "group change: a permission given (superuser)", "root", actor="root")(
    lambda w, c: ok(
        admin_client(c, w.root).post(
            reverse("admin:auth_group_change", args=[Group.objects.get(name=SITE_STAFF).pk]),
            {
                "name": SITE_STAFF,
                "permissions": [
                    *Group.objects.get(name=SITE_STAFF).permissions.values_list("pk", flat=True),
                    Permission.objects.get(codename="view_heartbeat").pk,
                ],
                "change_reason": "Site staff watch the worker too",
            },
        ),
        302,
    )
)
path("admin", "user add (superuser)", "root", actor="root")(
    lambda w, c: ok(
        admin_client(c, w.root).post(
            reverse("admin:auth_user_add"),
            {
                "username": "nurse7",
                "password1": "a long passphrase 7",
                "password2": "a long passphrase 7",
                "usable_password": "true",
            },
        ),
        302,
    )
)
path("admin", "user password set (superuser)", "root", "manager", actor="root")(
    lambda w, c: ok(
        admin_client(c, w.root).post(
            reverse("admin:auth_user_password_change", args=[w.manager.pk]),
            {"password1": "a new long passphrase", "password2": "a new long passphrase"},
        ),
        302,
    )
)

# tasks and commands
path("task", "safety.tasks.open_due_reviews (beat)", "observed", actor="system:beat")(
    lambda w, c: open_due_reviews.apply()
)
path("task", "reminders.tasks.sweep_due_reminders (beat)", "reminder", actor="system:beat,system:reminders")(
    lambda w, c: sweep_due_reminders.apply()
)
path("task", "reminders.tasks.deliver_reminder", "claimed", actor="system:reminders")(
    lambda w, c: deliver_reminder.apply((w.claimed.pk,))
)
path("task", "reminders.tasks.deliver_reminders (a batch)", "claimed", actor="system:reminders")(
    lambda w, c: deliver_reminders.apply(([w.claimed.pk],))
)
path("command", "load_protocol", actor="system:load_protocol")(
    lambda w, c: call_command("load_protocol", stdout=StringIO(), stderr=StringIO())
)
path("command", "load_ctcae_terms", actor="system:load_ctcae_terms")(
    lambda w, c: call_command("load_ctcae_terms", stdout=StringIO(), stderr=StringIO())
)
path("command", "create_role_user --chair", actor="system:create_role_user")(
    lambda w, c: call_command("create_role_user", "chair9", "--role", SAFETY_COMMITTEE, "--chair", stdout=StringIO())
)
path("command", "load_protocol --sync", "drifted", actor="system:load_protocol")(
    lambda w, c: call_command("load_protocol", "--sync", stdout=StringIO(), stderr=StringIO())
)
path("command", "ensure_admin", actor="system:ensure_admin")(
    lambda w, c: call_command("ensure_admin", stdout=StringIO())
)


# --- the check -------------------------------------------------------------------------------------------


def _audited_models():
    return [m for m in apps.get_models() if hasattr(m._meta, "simple_history_manager_attribute")]


def _history_models():
    from simple_history.models import HistoricalChanges

    return [
        m
        for m in apps.get_models()
        if issubclass(m, HistoricalChanges) and any(f.name == "history_user" for f in m._meta.fields)
    ]  # the many-to-many history rows hang off one of these


def _rows(model) -> dict:
    """The audited columns of every row (the ones its history copies)."""
    tracked = [f.attname for f in model.history.model.tracked_fields]
    return {row[model._meta.pk.attname]: row for row in model.objects.values(*tracked)}


def _state(model) -> dict:
    """What a path may change on each row: every column but ``last_login`` (a login writes no history) and the
    row's many-to-many rows that the history copies (a user's groups and permissions, a group's permissions)."""
    columns = [f.attname for f in model._meta.concrete_fields if f.name != "last_login"]
    state = {row[model._meta.pk.attname]: dict(row) for row in model.objects.values(*columns)}
    for field in model.history.model._history_m2m_fields:
        through = field.remote_field.through
        owner = field.m2m_field_name()
        target = field.m2m_reverse_field_name()
        for pk, other in through.objects.values_list(f"{owner}_id", f"{target}_id"):
            state[pk].setdefault(field.name, set()).add(other)
    return state


def _id(row) -> int:
    return row.pk


def _values(history_row) -> dict:
    return {f.attname: getattr(history_row, f.attname) for f in type(history_row).tracked_fields}


def _last_ids() -> dict:
    return {h: (h.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) for h in _history_models()}


def _actor(world: World, name: str):
    if "," in name:
        return set(name.split(","))
    if name.startswith("system:"):
        return name
    if name == "committee":
        return {m.username for m in world.committee}
    if name == "committee[0]":
        return world.committee[0].username
    return getattr(world, name).username


@pytest.mark.parametrize("write_path", PATHS, ids=[f"{p.kind}: {p.name}" for p in PATHS])
def test_every_write_path_leaves_a_history_row_per_changed_row_with_who_and_why(write_path, client):
    world = World()
    with time_machine.travel(NOW, tick=False):
        for stage in write_path.needs:
            getattr(world, stage)
        expected = _actor(world, write_path.actor)
        before = {m: _state(m) for m in _audited_models()}
        last = _last_ids()
        write_path.run(world, client)

    changed = []
    for model, old in before.items():
        new = _state(model)
        changed += [(model, pk) for pk in set(old) | set(new) if old.get(pk) != new.get(pk)]
    assert changed, "the path changed no audited row"
    fresh = {h: list(h.objects.filter(pk__gt=last[h]).select_related("history_user")) for h in _history_models()}
    missing = [
        f"{model.__name__} {pk}"
        for model, pk in changed
        if not any(getattr(r, model._meta.pk.attname) == pk for r in fresh[model.history.model])
    ]
    assert not missing, f"changed without a history row: {missing}"
    stale = []
    for model, pk in changed:
        current = _rows(model).get(pk)
        newest = max((r for r in fresh[model.history.model] if getattr(r, model._meta.pk.attname) == pk), key=_id)
        if current is not None and _values(newest) != current:
            stale.append(f"{model.__name__} {pk}")
        for field in model.history.model._history_m2m_fields:
            target = f"{field.m2m_reverse_field_name()}_id"
            recorded = {getattr(r, target) for r in getattr(newest, field.name).all()}
            if current is not None and recorded != _state(model)[pk].get(field.name, set()):
                stale.append(f"{model.__name__} {pk} {field.name}")
    assert not stale, f"the newest history row is not what the table holds (written past the history): {stale}"
    rows = [r for found in fresh.values() for r in found]
    anonymous = [f"{type(r).__name__} {r.pk}" for r in rows if r.history_user is None]
    assert not anonymous, f"history rows without who: {anonymous}"
    unexplained = [f"{type(r).__name__} {r.pk}" for r in rows if not (r.history_change_reason or "").strip()]
    assert not unexplained, f"history rows without why: {unexplained}"
    actors = {r.history_user.username for r in rows}
    assert actors <= (expected if isinstance(expected, set) else {expected}), actors


def test_the_table_covers_every_kind_of_write_path():
    kinds = {p.kind for p in PATHS}
    assert kinds == {"service", "admin", "api", "task", "command"}
    assert len({(p.kind, p.name) for p in PATHS}) == len(PATHS)
