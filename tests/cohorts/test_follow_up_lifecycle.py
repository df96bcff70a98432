"""The follow-up lifecycle that runs by itself: a visit nobody recorded becomes missed (one minor deviation),
a participant completes after her last visit, N consecutive missed visits flag her lost to follow-up until an
investigator confirms or dismisses it. Every automatic change is audited "automatic: …" by system:beat."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cohorts import services
from cohorts.models import FollowUpVisit, LostToFollowUp, Participant, ProtocolDeviation
from core.actors import BEAT, system_actor
from core.errors import DomainError
from reminders.models import Reminder
from tests.cohorts.test_infusions_support import SH, T0, enrolled_cohort, frozen, infuse, infuse_cohort, nurse
from tests.conftest import PROTOCOL_FILE
from tests.factories import staff_users
from trial.models import Trial
from trial.services import protocol_load

pytestmark = pytest.mark.django_db
UTC = dt.UTC
CODES = ("D1", "D7", "D14", "D28", "M3", "M6", "M12")


@pytest.fixture
def sentinel(nct_trial):
    """Infused 08:00–09:00 on 2026-11-25 (day 0) in Nanjing: D1 on 11-26, D7 window 12-01..12-03, …"""
    _, participants = enrolled_cohort(nct_trial, size=1)
    infuse(participants[0], T0)
    return Participant.objects.get(pk=participants[0].pk)


def visit(participant, code: str) -> FollowUpVisit:
    return participant.visits.get(code=code)


def sweep(trial, at: dt.datetime):
    with frozen(at):
        return services.follow_up_sweep(trial_id=trial.pk)


def after_window(participant, code: str) -> dt.datetime:
    """00:00 site time of the day after the visit's window closed: the first moment it is over."""
    return dt.datetime.combine(visit(participant, code).window_end + dt.timedelta(days=1), dt.time(0), tzinfo=SH)


def done(participant, code: str, on: dt.date | None = None):
    v = visit(participant, code)
    on = on or v.target_date
    with frozen(dt.datetime.combine(on, dt.time(12), tzinfo=SH)):
        return services.visit_complete(visit=v, on=on, by=nurse())


def missed_by_sweep(participant, code: str):
    return sweep(participant.trial, after_window(participant, code))


def status(participant) -> str:
    participant.refresh_from_db()
    return participant.status


def investigator():
    return staff_users()[1]


# --- a visit nobody recorded becomes missed at the end of its window (site day) -------------------------------


@pytest.mark.parametrize(
    ("moment", "d7_status"),
    [
        (dt.datetime(2026, 12, 3, 23, 59, 59, tzinfo=SH), "scheduled"),  # the window's last day, site time
        (dt.datetime(2026, 12, 4, 0, 0, tzinfo=SH), "missed"),  # the next day at the site
        (dt.datetime(2026, 12, 3, 15, 59, 59, tzinfo=UTC), "scheduled"),  # 23:59:59 in Nanjing
        (dt.datetime(2026, 12, 3, 16, 0, tzinfo=UTC), "missed"),  # 00:00 in Nanjing, still 12-03 in UTC
    ],
)
def test_a_visit_is_missed_from_midnight_after_its_window_at_the_site_not_before(sentinel, moment, d7_status):
    done(sentinel, "D1")
    sweep(sentinel.trial, moment)
    assert visit(sentinel, "D7").status == d7_status
    assert ProtocolDeviation.objects.filter(visit__code="D7").count() == (d7_status == "missed")


def test_a_missed_visit_opens_exactly_one_minor_deviation_however_many_sweeps_run(sentinel):
    done(sentinel, "D1")
    at = after_window(sentinel, "D7")
    reports = [sweep(sentinel.trial, at + dt.timedelta(minutes=15 * n)) for n in range(5)]
    d7 = visit(sentinel, "D7")
    assert [len(r.missed) for r in reports] == [1, 0, 0, 0, 0]
    deviation = ProtocolDeviation.objects.get(visit=d7)
    assert (deviation.category, deviation.severity, deviation.source, deviation.occurred_on) == (
        "visit_window",
        "minor",
        "system",
        dt.date(2026, 12, 3),
    )
    assert deviation.description == (
        "Day 7 missed (not recorded by the end of its window): window 2026-12-01 to 2026-12-03 "
        "(target 2026-12-02, day 7)."
    )
    assert (d7.status, d7.missed_automatically, d7.recorded_by.username) == ("missed", True, "system:beat")


def test_each_automatic_change_is_audited_automatic_by_the_named_system_actor(sentinel):
    done(sentinel, "D1")
    missed_by_sweep(sentinel, "D7")
    rows = [visit(sentinel, "D7").history.latest(), ProtocolDeviation.objects.get().history.latest()]
    for row in rows:
        assert row.history_change_reason.startswith("automatic: ")
        assert row.history_user is not None and row.history_user.username == "system:beat"
    actor = rows[0].history_user
    assert not actor.is_active and not actor.has_usable_password() and not actor.groups.exists()


def test_the_sweep_leaves_withdrawn_participants_visits_alone(sentinel):
    with frozen(dt.datetime(2026, 11, 26, 12, tzinfo=SH)):
        services.participant_withdraw(
            participant=sentinel, on=dt.date(2026, 11, 26), reason="Moved away", by=staff_users()[0]
        )
    sweep(sentinel.trial, dt.datetime(2028, 1, 1, tzinfo=SH))
    assert set(sentinel.visits.values_list("status", flat=True)) == {"scheduled"}
    assert ProtocolDeviation.objects.count() == 0


# --- consecutive missed visits: lost to follow-up, pending an investigator ------------------------------------


@pytest.mark.parametrize(
    ("limit", "outcomes", "expected"),
    [
        (2, ["missed"], "in_follow_up"),  # N-1
        (2, ["missed", "missed"], "ltfu_pending"),  # N
        (2, ["missed", "done", "missed"], "in_follow_up"),  # a done visit between misses resets the count
        (2, ["done", "missed", "missed"], "ltfu_pending"),
        (3, ["missed", "missed"], "in_follow_up"),  # N-1
        (3, ["missed", "missed", "missed"], "ltfu_pending"),  # N
        (3, ["missed", "missed", "done", "missed", "missed"], "in_follow_up"),
        (1, ["done", "missed"], "ltfu_pending"),
    ],
)
def test_the_protocols_number_of_consecutive_missed_visits_flags_her_lost_to_follow_up(
    sentinel, limit, outcomes, expected
):
    trial = sentinel.trial
    trial.lost_to_follow_up_missed_visits = limit
    trial.save()
    for code, outcome in zip(CODES, outcomes, strict=False):
        done(sentinel, code) if outcome == "done" else missed_by_sweep(sentinel, code)
    assert status(sentinel) == expected
    flags = LostToFollowUp.objects.filter(participant=sentinel)
    assert flags.count() == (expected == "ltfu_pending")
    if expected == "ltfu_pending":
        flag = flags.get()
        assert (flag.state, flag.missed_visits, flag.last_missed_visit.code) == (
            "pending",
            limit,
            CODES[len(outcomes) - 1],
        )
        assert flag.history.latest().history_user.username == "system:beat"
        reason = sentinel.history.latest().history_change_reason
        assert reason == f"automatic: {limit} consecutive visits missed (the protocol's limit is {limit})"


def test_a_staff_recorded_missed_visit_counts_and_opens_one_deviation_too(sentinel):
    d1 = visit(sentinel, "D1")
    with frozen(dt.datetime(2026, 11, 26, 18, tzinfo=SH)):
        services.visit_miss(visit=d1, reason="Flu, stayed home", by=nurse())
        with pytest.raises(DomainError) as refused:
            services.visit_miss(visit=d1, reason="again", by=nurse())
    assert refused.value.code == "visit_already_recorded"
    assert ProtocolDeviation.objects.filter(visit=d1, severity="minor", category="visit_window").count() == 1
    missed_by_sweep(sentinel, "D7")
    assert status(sentinel) == "ltfu_pending"


def test_repeated_sweeps_flag_a_streak_once(sentinel):
    missed_by_sweep(sentinel, "D1")
    missed_by_sweep(sentinel, "D7")
    for n in range(3):
        sweep(sentinel.trial, after_window(sentinel, "D7") + dt.timedelta(hours=n))
    assert LostToFollowUp.objects.filter(participant=sentinel).count() == 1


# --- the investigator confirms or dismisses ---------------------------------------------------------------------


@pytest.fixture
def flagged(sentinel):
    missed_by_sweep(sentinel, "D1")
    missed_by_sweep(sentinel, "D7")
    assert status(sentinel) == "ltfu_pending"
    return LostToFollowUp.objects.get(participant=sentinel)


def test_an_investigator_confirms_she_is_lost_to_follow_up(flagged):
    with frozen(dt.datetime(2026, 12, 10, 9, tzinfo=SH)):
        services.lost_to_follow_up_confirm(flag=flagged, note="Three calls and a letter, no answer", by=investigator())
    flagged.refresh_from_db()
    assert (flagged.state, flagged.decided_by, flagged.decision_note) == (
        "confirmed",
        investigator(),
        "Three calls and a letter, no answer",
    )
    participant = flagged.participant
    assert status(participant) == "lost_to_follow_up"
    row = participant.history.latest()
    assert (row.history_user, row.history_change_reason) == (
        investigator(),
        "Lost to follow-up, confirmed: Three calls and a letter, no answer",
    )


@pytest.mark.parametrize(
    ("who", "note", "code"),
    [
        (lambda: staff_users()[0], "No answer", "permission_denied"),  # site staff cannot decide
        (investigator, "", "reason_required"),
        (investigator, "   ", "reason_required"),
    ],
)
def test_a_decision_without_the_role_or_a_note_is_refused_and_the_flag_stays_pending(flagged, who, note, code):
    with pytest.raises(DomainError) as refused:
        services.lost_to_follow_up_confirm(flag=flagged, note=note, by=who())
    assert refused.value.code == code
    flagged.refresh_from_db()
    assert flagged.state == "pending" and status(flagged.participant) == "ltfu_pending"


def test_a_flag_is_decided_once(flagged):
    services.lost_to_follow_up_dismiss(flag=flagged, note="Reached by phone, coming next week", by=investigator())
    with pytest.raises(DomainError) as refused:
        services.lost_to_follow_up_confirm(flag=flagged, note="No answer", by=investigator())
    assert refused.value.code == "lost_to_follow_up_not_pending"


def test_a_dismissed_flag_restarts_the_count_after_its_streak(flagged):
    participant = flagged.participant
    services.lost_to_follow_up_dismiss(flag=flagged, note="Reached by phone", by=investigator())
    assert status(participant) == "in_follow_up"
    missed_by_sweep(participant, "D14")  # one miss after the dismissed streak: N-1
    assert status(participant) == "in_follow_up"
    missed_by_sweep(participant, "D28")  # N after it
    assert status(participant) == "ltfu_pending"
    assert list(
        LostToFollowUp.objects.filter(participant=participant).order_by("pk").values_list("state", flat=True)
    ) == [
        "dismissed",
        "pending",
    ]


def test_a_visit_done_while_flagged_dismisses_the_flag_by_itself(flagged):
    participant = flagged.participant
    done(participant, "D14")
    flagged.refresh_from_db()
    assert flagged.state == "dismissed" and flagged.decided_by.username == "system:beat"
    assert flagged.decision_note.startswith("automatic: ")
    assert status(participant) == "in_follow_up"


# --- completion -------------------------------------------------------------------------------------------------


def test_she_completes_when_her_last_scheduled_visit_is_done_not_before(sentinel):
    for code in CODES[:-1]:
        done(sentinel, code)
    assert status(sentinel) == "in_follow_up"
    done(sentinel, "M12")
    assert status(sentinel) == "completed"
    row = sentinel.history.latest()
    assert row.history_change_reason == "automatic: her last scheduled visit (M12) is recorded (completed)"
    assert row.history_user.username == "system:beat"


def test_she_completes_when_her_last_visit_is_missed_below_the_limit(sentinel):
    for code in CODES[:-1]:
        done(sentinel, code)
    missed_by_sweep(sentinel, "M12")
    assert status(sentinel) == "completed"
    assert sentinel.history.latest().history_change_reason == (
        "automatic: her last scheduled visit (M12) is recorded (missed)"
    )


def test_the_limit_wins_over_completion_and_a_dismissal_then_completes_her(sentinel):
    for code in CODES[:-2]:
        done(sentinel, code)
    missed_by_sweep(sentinel, "M6")
    missed_by_sweep(sentinel, "M12")
    assert status(sentinel) == "ltfu_pending"
    flag = LostToFollowUp.objects.get(participant=sentinel)
    services.lost_to_follow_up_dismiss(flag=flag, note="Seen at another hospital; data obtained", by=investigator())
    assert status(sentinel) == "completed"


# --- a missed visit recorded later ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "where"),
    [(dt.date(2026, 12, 3), "inside"), (dt.date(2026, 12, 4), "outside")],
)
def test_a_visit_missed_by_the_sweep_may_be_recorded_later_as_done_and_keeps_its_one_deviation(sentinel, on, where):
    done(sentinel, "D1")
    missed_by_sweep(sentinel, "D7")
    with frozen(dt.datetime(2026, 12, 5, 9, tzinfo=SH)):
        services.visit_complete(visit=visit(sentinel, "D7"), on=on, by=nurse())
    d7 = visit(sentinel, "D7")
    assert (d7.status, d7.done_on, d7.missed_automatically, d7.missed_reason) == ("completed", on, False, "")
    deviation = ProtocolDeviation.objects.get(visit=d7)
    assert deviation.description.endswith(f"Recorded later as done on {on}, {where} its window.")
    assert deviation.status == "open"
    with frozen(dt.datetime(2026, 12, 5, 10, tzinfo=SH)), pytest.raises(DomainError) as refused:
        services.visit_miss(visit=d7, reason="no", by=nurse())
    assert refused.value.code == "visit_already_recorded"


def test_a_visit_missed_by_the_sweep_may_be_confirmed_missed_with_the_reason(sentinel):
    done(sentinel, "D1")
    missed_by_sweep(sentinel, "D7")
    with frozen(dt.datetime(2026, 12, 5, 9, tzinfo=SH)):
        services.visit_miss(visit=visit(sentinel, "D7"), reason="In hospital elsewhere", by=nurse())
    d7 = visit(sentinel, "D7")
    assert (d7.missed_reason, d7.missed_automatically, d7.recorded_by) == ("In hospital elsewhere", False, nurse())
    assert ProtocolDeviation.objects.filter(visit=d7).count() == 1


# --- batching ---------------------------------------------------------------------------------------------------


def test_the_sweeps_queries_do_not_grow_with_the_number_of_visits(nct_trial, tmp_path):
    data = json.loads(PROTOCOL_FILE.read_text(encoding="utf-8"))
    data["registry_id"] = "NCT00000002"
    second = tmp_path / "second.json"
    second.write_text(json.dumps(data), encoding="utf-8")
    protocol_load(path=second)
    small_trial, large_trial = nct_trial, Trial.objects.get(registry_id="NCT00000002")
    _, one = enrolled_cohort(small_trial, size=1, prefix="S")
    infuse_cohort(one)
    _, three = enrolled_cohort(large_trial, size=3, prefix="L")
    infuse_cohort(three)
    system_actor(BEAT)  # created once, before either sweep
    counts = {}
    for trial in (small_trial, large_trial):
        with frozen(dt.datetime(2028, 6, 1, tzinfo=SH)), CaptureQueriesContext(connection) as queries:
            report = services.follow_up_sweep(trial_id=trial.pk)
        counts[trial.registry_id] = (len(report.missed), len(queries))
    assert counts["NCT06949137"][0] == 7 and counts["NCT00000002"][0] == 21
    assert counts["NCT06949137"][1] == counts["NCT00000002"][1]


# --- the "visit missed" reminder --------------------------------------------------------------------------------


def test_each_missed_visit_schedules_one_visit_missed_reminder_for_site_staff_however_many_sweeps(sentinel):
    done(sentinel, "D1")
    at = after_window(sentinel, "D7")
    for n in range(3):
        sweep(sentinel.trial, at + dt.timedelta(minutes=15 * n))
    d7 = visit(sentinel, "D7")
    (reminder,) = Reminder.objects.filter(subject=f"visit:{d7.pk}", kind="visit-missed")
    assert (reminder.kind, reminder.recipient_role, reminder.state, reminder.dedupe_key) == (
        "visit-missed",
        "Site staff",
        "pending",
        f"visit:{d7.pk}:visit-missed",
    )
    assert reminder.due_at == at and reminder.event_at == at  # 2026-12-04 00:00 in Nanjing, stored in UTC
    assert reminder.subject_label == f"{sentinel.study_id} — Day 7"


@pytest.mark.parametrize("record", ["done", "missed"])
def test_recording_a_visit_the_sweep_missed_cancels_its_reminder(sentinel, record):
    done(sentinel, "D1")
    missed_by_sweep(sentinel, "D7")
    d7 = visit(sentinel, "D7")
    with frozen(dt.datetime(2026, 12, 4, 9, tzinfo=SH)):
        if record == "done":
            services.visit_complete(visit=d7, on=dt.date(2026, 12, 3), by=nurse())
        else:
            services.visit_miss(visit=d7, reason="In hospital elsewhere", by=nurse())
    reminder = Reminder.objects.get(subject=f"visit:{d7.pk}", kind="visit-missed")
    assert (reminder.state, reminder.cancel_reason) == ("cancelled", "the missed visit was recorded")
