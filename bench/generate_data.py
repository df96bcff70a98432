"""Build a CRO-scale data set through the ORM: 200 trials, 20,000 participants, 200,000 adverse events.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohort_manager_bench .venv/bin/python bench/generate_data.py
    .venv/bin/python bench/generate_data.py --trials 4 --participants 40 --adverse-events 400 --big-trial-events 200

Every constraint and trigger holds, because nothing is switched off:

* each trial is a copy of the NCT06949137 protocol loaded by ``trial.services.protocol_load``;
* its first cohort (three participants) goes the whole way through the services with the clock set
  (``time_machine``): registration, screening, judgments, consent, enrollment, the sentinel's infusion
  and the staggered ones, every follow-up visit, the scheduled review, the proposal and three signatures,
  the chair's among them. That effective escalation is what lets the database's gate trigger
  (``cohorts_cohort_gate``) accept the second cohort, which the decision opens;
* the second cohort's participants, enrollments, infusions, adverse events and reporting clocks are
  ``bulk_create``-d (no history rows for those: it is bench data), with the dates and values the rules
  and CHECK constraints require (slots within capacity, one sentinel, worst grade at least grade, a
  serious event with a criterion, no grade 5, at most one confirmed DLT per trial so no stopping rule
  would have fired); the cohort's states change through ``cohorts.services.cohort_transition``.

The first trial (``GEN00000``) gets ``--big-trial-events`` events, the second ``--medium-trial-events``
(1,000 by default), the others share the rest. Then ``VACUUM (ANALYZE)`` on PostgreSQL
(autovacuum may be off), ``ANALYZE`` on SQLite or inside a caller's transaction. Prints JSON.
Passwords are hashed with MD5 in this process only (the committee signs 3 × trials times; PBKDF2 would
take minutes): bench data, never a production setting.
"""

import argparse
import datetime as dt
import io
import json
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-committee-password"
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
VOLUME = Decimal("70.0")  # mL in 60 minutes with a 20 drops/mL set: 23.3 drops/min, inside 20-25


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--participants", type=int, default=20_000, help="in all (at least 4 per trial)")
    parser.add_argument("--adverse-events", type=int, default=200_000, help="in all")
    parser.add_argument("--big-trial-events", type=int, default=100_000, help="the first trial's events")
    parser.add_argument("--medium-trial-events", type=int, default=1_000, help="the second trial's events")
    parser.add_argument("--seed", type=int, default=13)
    return parser.parse_args(argv)


def events_per_trial(*, trials: int, total: int, big: int, medium: int) -> list[int]:
    """How many events each trial gets: the first ``big``, the second ``medium``, the rest shared evenly."""
    if trials == 1:
        return [total]
    counts = [big, medium] + [0] * (trials - 2)
    rest = max(total - big - medium, 0)
    others = trials - 2
    for i in range(others):
        counts[2 + i] = rest // others + (1 if i < rest % others else 0)
    if not others:
        counts[1] += rest
    return counts


# --- people ----------------------------------------------------------------------------------------------


def make_users() -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from core.roles import INVESTIGATOR, SAFETY_COMMITTEE, SITE_STAFF

    User = get_user_model()

    def user(username, role, **names):
        person, created = User.objects.get_or_create(username=username, defaults={"is_staff": True, **names})
        if created:
            person.set_password(PASSWORD)
            person.save()
            person.groups.add(Group.objects.get(name=role))
        return person

    members = [user(f"gen-src{i}", SAFETY_COMMITTEE, first_name="Member", last_name=f"Number{i}") for i in range(3)]
    members[0].user_permissions.add(Permission.objects.get(content_type__app_label="safety", codename="chair_review"))
    return {
        "coordinator": user("gen-coordinator", SITE_STAFF, first_name="Gen", last_name="Coordinator"),
        "investigator": user("gen-investigator", INVESTIGATOR, first_name="Gen", last_name="Investigator"),
        "members": [User.objects.get(pk=m.pk) for m in members],  # fresh: the chair permission cache
    }


def assign_sites(trial, users: dict) -> None:
    """The generated coordinator and investigator work at every site of ``trial`` (site scoping, trial.access)."""
    from trial.models import SiteAssignment

    for person in (users["coordinator"], users["investigator"]):
        for site in trial.sites.all():
            SiteAssignment.objects.get_or_create(user=person, site=site)


def load_trial(directory: Path, registry_id: str):
    from trial.models import Trial
    from trial.services import protocol_load

    data = json.loads((ROOT / "trial" / "protocols" / "NCT06949137.json").read_text(encoding="utf-8"))
    data["registry_id"] = registry_id
    path = directory / f"{registry_id}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    protocol_load(path=path)
    return Trial.objects.get(registry_id=registry_id)


def eligible(trial, number: str, users: dict):
    from django.utils import timezone

    from cohorts import services
    from cohorts.models import ConsentDocument, Participant
    from cohorts.selectors import eligibility_summary, site_today
    from tests.factories import ELIGIBLE_SCREENING

    coordinator = users["coordinator"]
    participant = services.participant_register(
        trial=trial,
        site=trial.sites.order_by("pk").first(),
        screening_number=number,
        date_of_birth=dt.date(1958, 6, 1),
        sex="F",
        initials="GD",
        by=coordinator,
    )
    services.screening_record_save(
        participant=participant,
        values={**ELIGIBLE_SCREENING, "screening_date": site_today(participant)},
        fractures=[],
        by=coordinator,
    )
    pending = eligibility_summary(participant).pending_judgment
    services.judgments_confirm(participant=participant, answers=dict.fromkeys(pending, True), by=users["investigator"])
    document, _ = ConsentDocument.objects.get_or_create(
        trial=trial, version="1.0", defaults={"effective_from": dt.date(2020, 1, 1), "title": "ICF"}
    )
    services.consent_record(
        participant=participant,
        document=document,
        signed_at=timezone.now() - 5 * dt.timedelta(minutes=1),
        by=coordinator,
    )
    return Participant.objects.get(pk=participant.pk)


def first_cohort_through_the_services(trial, users: dict, begin: dt.datetime, *, bulk_size: int):
    """Cohort 1 of three, from screening to the effective escalation that opens cohort 2 (returned)."""
    import time_machine

    from cohorts import services as cohorts
    from cohorts.models import FollowUpVisit
    from safety import services as safety
    from trial.models import Trial

    coordinator, investigator, members = users["coordinator"], users["investigator"], users["members"]
    with time_machine.travel(begin - 2 * HOUR, tick=False):
        cohort = cohorts.cohort_open_first(trial=trial, by=investigator)
        people = [eligible(trial, f"{trial.registry_id[-5:]}-S{n}", users) for n in range(1, 4)]
        for person in people:
            cohorts.enroll_participant(participant=person, cohort=cohort, by=coordinator)
    for person, offset in zip(people, (0 * DAY, 8 * DAY, 9 * DAY + 2 * HOUR), strict=True):
        start = begin + offset
        with time_machine.travel(start, tick=False):
            infusion = cohorts.infusion_start(
                participant=person,
                by=coordinator,
                started_at=start,
                product_lot="GEN-LOT",
                product_expiry=start + 6 * HOUR,
                volume_ml=VOLUME,
            )
        with time_machine.travel(start + HOUR, tick=False):
            cohorts.infusion_complete(
                infusion=infusion,
                ended_at=start + HOUR,
                cells_administered=infusion.cells_planned,
                volume_ml=VOLUME,
                by=coordinator,
            )
    for visit in FollowUpVisit.objects.filter(participant__in=people).order_by("target_date", "pk"):
        with time_machine.travel(dt.datetime.combine(visit.target_date, dt.time(12), tzinfo=begin.tzinfo), tick=False):
            cohorts.visit_complete(visit=visit, on=visit.target_date, by=coordinator)
    # Cohort 2 holds the rest of the trial's participants: the trial's cohort size is raised before the
    # decision that opens it (bench setup; the trial's CHECK constraints still hold).
    Trial.objects.filter(pk=trial.pk).update(cohort_size=bulk_size, max_per_dose_level=max(1000, bulk_size))
    decided = begin + 40 * DAY
    with time_machine.travel(decided, tick=False):
        review = safety.review_open_scheduled(cohort=cohort)
        safety.review_propose(review=review, decision="escalate", by=members[0])
    with time_machine.travel(decided + HOUR, tick=False):
        for member in members:
            safety.review_sign(review=review, user=member, password=PASSWORD, meaning="approve")
    review.refresh_from_db()
    assert review.state == review.State.EFFECTIVE, review.state
    return review.resulting_cohort, people


# --- the bulk part ---------------------------------------------------------------------------------------


def bulk_follow_up(trial, people: list, infusions: dict, users: dict, *, template) -> None:
    """Each bulk participant's screening record (the template's values, eligible), her protocol visits (done
    up to today, scheduled after) and, for every tenth, a minor procedure deviation recorded by staff."""
    from django.utils import timezone

    from cohorts.models import FollowUpVisit, ProtocolDeviation, ScreeningRecord

    screening = template.screening
    values = {
        f.attname: getattr(screening, f.attname)
        for f in ScreeningRecord._meta.concrete_fields
        if f.name not in {"id", "participant"}
    }
    ScreeningRecord.objects.bulk_create(ScreeningRecord(**{**values, "participant_id": p.pk}) for p in people)
    today, now = timezone.localdate(), timezone.now()
    visits = []
    for person in people:
        infusion = infusions[person.pk]
        day0 = person.dlt_window_start
        for definition in trial.visit_schedule.all():
            target = day0 + dt.timedelta(days=definition.day_offset)
            done = target < today
            visits.append(
                FollowUpVisit(
                    participant=person,
                    infusion=infusion,
                    definition=definition,
                    code=definition.code,
                    name=definition.name,
                    day_offset=definition.day_offset,
                    target_date=target,
                    window_start=target - dt.timedelta(days=definition.window_before_days),
                    window_end=target + dt.timedelta(days=definition.window_after_days),
                    status="completed" if done else "scheduled",
                    done_on=target if done else None,
                    recorded_by=users["coordinator"] if done else None,
                    recorded_at=dt.datetime.combine(target, dt.time(12), tzinfo=dt.UTC) if done else None,
                )
            )
    FollowUpVisit.objects.bulk_create(visits, batch_size=5000)
    ProtocolDeviation.objects.bulk_create(
        ProtocolDeviation(
            trial=trial,
            participant=person,
            category="procedure",
            severity="minor",
            source="staff",
            description="Vital signs taken 20 minutes late (bench data)",
            detected_by=users["coordinator"],
            occurred_on=person.dlt_window_start,
            detected_at=min(now, infusions[person.pk].ended_at + HOUR),
            infusion=infusions[person.pk],
        )
        for person in people[::10]
    )


def bulk_cohort(trial, cohort, users: dict, *, size: int, first_infusion: dt.datetime, template) -> list:
    """``size`` participants enrolled into ``cohort`` (open), infused one a day after the sentinel's week."""
    from cohorts.models import Cohort, ConsentRecord, Enrollment, Infusion, Participant
    from cohorts.services import Transition, cohort_transition

    coordinator = users["coordinator"]
    site = trial.sites.order_by("pk").first()
    document = trial.consent_documents.get(version="1.0")
    already = Enrollment.objects.filter(trial=trial).count()
    days = [0] + [8 + n for n in range(size - 1)]  # the sentinel, then one a day after her 7-day observation
    people = Participant.objects.bulk_create(
        Participant(
            trial=trial,
            site=site,
            screening_number=f"{trial.registry_id[-5:]}-B{n:04d}",
            study_id=f"{trial.registry_id[-4:]}-{already + n:03d}",
            initials="GB",
            date_of_birth=dt.date(1950 + n % 20, 1 + n % 12, 1 + n % 28),
            sex="F",
            status=Participant.Status.INFUSED,
            dlt_window_start=(first_infusion + days[n - 1] * DAY).date(),
            dlt_window_end=(first_infusion + days[n - 1] * DAY).date() + dt.timedelta(days=trial.dlt_window_days),
        )
        for n in range(1, size + 1)
    )
    consented = first_infusion - 3 * DAY
    ConsentRecord.objects.bulk_create(
        ConsentRecord(participant=p, document=document, signed_at=consented, obtained_by=coordinator) for p in people
    )
    Enrollment.objects.bulk_create(
        Enrollment(
            trial=trial,
            participant=p,
            cohort=cohort,
            slot=n,
            cohort_capacity=cohort.capacity,
            is_sentinel=n == 1,
            enrolled_at=consented + DAY,
            enrolled_by=coordinator,
        )
        for n, p in enumerate(people, start=1)
    )
    dose = cohort.dose_level
    Infusion.objects.bulk_create(
        Infusion(
            trial=trial,
            participant=p,
            cohort=cohort,
            dose_level=dose,
            max_infusions=trial.max_infusions_per_participant,
            status=Infusion.Status.COMPLETED,
            cells_planned=dose.cells,
            cells_administered=dose.cells,
            product_lot="GEN-LOT",
            product_expiry=first_infusion + days[n] * DAY + 6 * HOUR,
            started_at=first_infusion + days[n] * DAY,
            ended_at=first_infusion + days[n] * DAY + HOUR,
            volume_planned_ml=VOLUME,
            volume_ml=VOLUME,
            drop_factor=trial.default_drop_factor,
            average_drops_per_minute=Decimal("23.3"),
            average_rate_min=trial.infusion_rate_min,
            average_rate_max=trial.infusion_rate_max,
            administered_by=coordinator,
        )
        for n, p in enumerate(people)
    )
    infusions = {i.participant_id: i for i in Infusion.objects.filter(cohort=cohort)}
    bulk_follow_up(trial, people, infusions, users, template=template)
    cohort = Cohort.objects.select_related("trial", "dose_level").get(pk=cohort.pk)
    cohort_transition(cohort=cohort, transition=Transition.FILL, by=coordinator, reason="Cohort full (bench data)")
    cohort_transition(
        cohort=cohort, transition=Transition.ALL_INFUSED, by=coordinator, reason="All infused (bench data)"
    )
    return people


def bulk_events(trial, people: list, users: dict, *, count: int, rng: random.Random, terms: list) -> int:
    """``count`` adverse events on ``people`` (infused), in batches; serious ones with a reported clock."""
    from django.utils import timezone

    from safety.models import AdverseEvent, ReportingClock

    if not count or not people:
        return 0
    now = timezone.now()
    today = timezone.localdate()
    coordinator, investigator = users["coordinator"], users["investigator"]
    confirmed_one = False
    made = 0
    while made < count:
        batch = []
        for i in range(made, min(count, made + 5000)):
            person = people[i % len(people)]
            span = max((today - person.dlt_window_start).days, 0)
            onset = person.dlt_window_start + dt.timedelta(days=rng.randint(0, span))
            grade = rng.choices((1, 2, 3, 4), weights=(60, 30, 8, 2))[0]
            serious = (grade >= 3 and rng.random() < 0.5) or i % 50 == 0  # the first event of a trial too
            resolved = rng.random() < 0.7 and onset < today
            in_window = onset <= person.dlt_window_end
            relationship = rng.choice(("not_related", "unlikely", "possible", "probable"))
            dlt_status, decided_by, decided_at, reason = "not_candidate", None, None, "Not a DLT candidate"
            if grade >= 3 and in_window and relationship in ("possible", "probable"):
                # A candidate is decided by an investigator; one DLT per trial at most (two would pause it).
                dlt_status = "rejected" if confirmed_one else "confirmed"
                confirmed_one = True
                decided_by, decided_at, reason = investigator, now, "Investigator's decision (bench data)"
            aware = min(dt.datetime.combine(onset, dt.time(10), tzinfo=dt.UTC) + HOUR, now)
            term = terms[i % len(terms)] if terms else None
            batch.append(
                AdverseEvent(
                    participant=person,
                    verbatim_term=term.term if term else "Headache",
                    ctcae_term=term,
                    ctcae_term_text="" if term else "Headache",
                    onset_date=onset,
                    resolution_date=min(onset + dt.timedelta(days=rng.randint(0, 20)), today) if resolved else None,
                    grade=grade,
                    worst_grade=min(grade + rng.choice((0, 0, 1)), 4),
                    serious=serious,
                    sae_hospitalisation=serious,
                    relationship=relationship,
                    outcome="recovered" if resolved else "recovering",
                    site_aware_at=aware,
                    reported_by=coordinator,
                    dlt_status=dlt_status,
                    dlt_reason=reason,
                    dlt_decided_by=decided_by,
                    dlt_decided_at=decided_at,
                )
            )
        events = AdverseEvent.objects.bulk_create(batch)
        ReportingClock.objects.bulk_create(
            ReportingClock(
                adverse_event=e,
                kind="sponsor_24h",
                started_at=e.site_aware_at,
                due_at=e.site_aware_at + 24 * HOUR,
                recipient="Sponsor safety desk",
                done_at=e.site_aware_at + 2 * HOUR,
                done_by=coordinator,
                reported_to="Sponsor safety desk",
            )
            for e in events
            if e.serious
        )
        made += len(batch)
    return made


def generate(
    *,
    trials: int = 200,
    participants: int = 20_000,
    adverse_events: int = 200_000,
    big_trial_events: int = 100_000,
    medium_trial_events: int = 1_000,
    seed: int = 13,
    prefix: str = "GEN",
) -> dict:
    """Build the data set in the configured database (Django set up) and return what was made."""
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from safety.models import CtcaeTerm

    per_trial = participants // trials
    if per_trial < 4:
        raise ValueError("Give at least 4 participants per trial (3 in the first cohort, 1 in the second).")
    started = time.monotonic()
    if not CtcaeTerm.objects.exists():
        call_command("load_ctcae_terms", stdout=io.StringIO(), stderr=io.StringIO())
    terms = list(CtcaeTerm.objects.order_by("pk")[:200])
    users = make_users()
    rng = random.Random(seed)
    events = events_per_trial(trials=trials, total=adverse_events, big=big_trial_events, medium=medium_trial_events)
    zone = dt.timezone(dt.timedelta(hours=8))
    bulk_size = per_trial - 3
    # The first cohort starts long enough ago that the second's last ~14 participants are in their DLT window now.
    begin = (timezone.now() - (60 + bulk_size + 14) * DAY).astimezone(zone).replace(hour=8, minute=0, second=0)
    made = {"trials": 0, "participants": 0, "adverse_events": 0, "cohorts_opened_by_reviews": 0}
    with tempfile.TemporaryDirectory() as directory:
        for t in range(trials):
            with transaction.atomic():
                trial = load_trial(Path(directory), f"{prefix}{t:05d}")
                assign_sites(trial, users)
                second, people = first_cohort_through_the_services(trial, users, begin, bulk_size=bulk_size)
                bulk = bulk_cohort(
                    trial, second, users, size=bulk_size, first_infusion=begin + 50 * DAY, template=people[0]
                )
                made["adverse_events"] += bulk_events(
                    trial, [*people, *bulk] if len(bulk) < 3 else bulk, users, count=events[t], rng=rng, terms=terms
                )
            made["trials"] += 1
            made["participants"] += len(people) + len(bulk)
            made["cohorts_opened_by_reviews"] += 1
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load (it may be off): the dead versions of the tally rows that
        # every event's trigger updated are cleared, and the planner's statistics are fresh. VACUUM cannot run
        # in a transaction: inside a caller's (a test's), ANALYZE only.
        vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
        cursor.execute("VACUUM (ANALYZE)" if vacuum else "ANALYZE")
    made["seconds"] = round(time.monotonic() - started, 1)
    return made


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # bench only, this process

    call_command("migrate", verbosity=0, interactive=False)
    report = generate(
        trials=args.trials,
        participants=args.participants,
        adverse_events=args.adverse_events,
        big_trial_events=args.big_trial_events,
        medium_trial_events=args.medium_trial_events,
        seed=args.seed,
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
