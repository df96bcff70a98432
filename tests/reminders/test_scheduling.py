from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from core.errors import DomainError
from reminders import services
from reminders.models import Reminder, ReminderMute
from tests.factories import UserFactory

DUE = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)


def _schedule(site, **kwargs):
    values = {
        "kind": "visit-window-opens",
        "subject": "visit:42",
        "subject_label": "Day 7 visit of 9137-001",
        "due_at": DUE,
        "trial": site.trial,
        "site": site,
    }
    return services.reminder_schedule(**(values | kwargs))


def test_scheduling_creates_one_pending_row_with_the_kinds_role_and_safety_flag(site):
    reminder = _schedule(site)
    assert reminder.state == Reminder.State.PENDING
    assert reminder.dedupe_key == "visit:42:visit-window-opens"
    assert reminder.recipient_role == "Site staff"
    assert reminder.safety is False
    assert reminder.history.first().history_change_reason == "Scheduled"


def test_scheduling_twice_keeps_one_row_and_moves_the_due_time_while_pending(site):
    first = _schedule(site)
    later = DUE + timedelta(days=1)
    second = _schedule(site, due_at=later)
    assert second.pk == first.pk
    assert Reminder.objects.count() == 1
    assert Reminder.objects.get().due_at == later


def test_scheduling_again_after_it_was_sent_changes_nothing(site):
    reminder = _schedule(site)
    Reminder.objects.filter(pk=reminder.pk).update(state=Reminder.State.SENT, sent_at=DUE)
    again = _schedule(site, due_at=DUE + timedelta(days=5))
    assert again.pk == reminder.pk
    assert Reminder.objects.get().due_at == DUE
    assert Reminder.objects.get().state == Reminder.State.SENT


def test_a_per_user_kind_needs_its_user_and_puts_the_user_in_the_key(site):
    member = UserFactory(role="Safety committee")
    with pytest.raises(ValueError, match="recipient_user"):
        _schedule(site, kind="review-signature", subject="review:3")
    reminder = _schedule(site, kind="review-signature", subject="review:3", recipient_user=member)
    assert reminder.dedupe_key == f"review:3:review-signature:user:{member.pk}"
    assert reminder.recipient_role == ""
    assert reminder.safety is True


def test_cancelling_a_subject_cancels_its_open_rows_only_and_says_why(site):
    opens = _schedule(site)
    closes = _schedule(site, kind="visit-window-closes")
    other = _schedule(site, subject="visit:43")
    sent = _schedule(site, kind="visit-missed")
    Reminder.objects.filter(pk=sent.pk).update(state=Reminder.State.SENT, sent_at=DUE)
    assert services.reminder_cancel(subject="visit:42", reason="visit recorded") == 2
    states = dict(Reminder.objects.values_list("pk", "state"))
    assert states[opens.pk] == states[closes.pk] == Reminder.State.CANCELLED
    assert states[other.pk] == Reminder.State.PENDING
    assert states[sent.pk] == Reminder.State.SENT
    assert Reminder.objects.get(pk=opens.pk).cancel_reason == "visit recorded"


def test_cancelling_by_kind_leaves_the_subjects_other_kinds(site):
    _schedule(site)
    closes = _schedule(site, kind="visit-window-closes")
    assert services.reminder_cancel(subject="visit:42", kinds=["visit-window-opens"], reason="x") == 1
    assert Reminder.objects.get(pk=closes.pk).state == Reminder.State.PENDING


def test_a_cancellation_inside_a_transaction_that_rolls_back_leaves_the_reminder_pending(site):
    reminder = _schedule(site)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.reminder_cancel(subject="visit:42", reason="visit recorded")
        raise RuntimeError("the visit's own write failed")
    assert Reminder.objects.get(pk=reminder.pk).state == Reminder.State.PENDING


def test_the_database_holds_one_row_per_dedupe_key(site):
    reminder = _schedule(site)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reminder.objects.create(
            kind=reminder.kind, dedupe_key=reminder.dedupe_key, subject="visit:42", subject_label="x",
            recipient_role="Site staff", due_at=DUE,
        )  # fmt: skip


def test_the_database_refuses_a_reminder_without_exactly_one_recipient(site):
    with pytest.raises(IntegrityError), transaction.atomic():
        Reminder.objects.create(kind="visit-missed", dedupe_key="k", subject="s", subject_label="x", due_at=DUE)


def test_a_user_can_mute_a_follow_up_kind_but_not_a_safety_kind(nurse):
    services.reminder_mute(user=nurse, kind="visit-window-opens", by=nurse)
    assert ReminderMute.objects.filter(user=nurse, kind="visit-window-opens").exists()
    with pytest.raises(DomainError) as refused:
        services.reminder_mute(user=nurse, kind="sponsor-notice", by=nurse)
    assert refused.value.code == "reminder_not_mutable"


def test_the_database_refuses_a_mute_of_a_safety_kind(nurse):
    with pytest.raises(IntegrityError), transaction.atomic():
        ReminderMute.objects.create(user=nurse, kind="dlt-decision")


def test_nobody_mutes_reminders_for_someone_else(nurse, investigator):
    with pytest.raises(DomainError) as refused:
        services.reminder_mute(user=nurse, kind="visit-window-opens", by=investigator)
    assert refused.value.code == "permission_denied"


def test_send_again_needs_the_data_managers_permission_and_a_reason(site, nurse):
    reminder = _schedule(site)
    Reminder.objects.filter(pk=reminder.pk).update(state=Reminder.State.SENT, sent_at=DUE)
    manager = UserFactory(role="Data manager")
    with pytest.raises(DomainError) as refused:
        services.reminder_send_again(reminder=reminder, reason="lost", by=nurse)
    assert refused.value.code == "permission_denied"
    with pytest.raises(DomainError) as refused:
        services.reminder_send_again(reminder=reminder, reason=" ", by=manager)
    assert refused.value.code == "reason_required"


def test_send_again_makes_a_new_row_due_now_and_keeps_the_original_as_sent(site):
    reminder = _schedule(site)
    Reminder.objects.filter(pk=reminder.pk).update(state=Reminder.State.SENT, sent_at=DUE)
    manager = UserFactory(role="Data manager")
    copy = services.reminder_send_again(reminder=reminder, reason="the nurse lost the mail", by=manager)
    again = services.reminder_send_again(reminder=reminder, reason="again", by=manager)
    assert copy.dedupe_key == "visit:42:visit-window-opens:again:1"
    assert again.dedupe_key == "visit:42:visit-window-opens:again:2"
    assert copy.state == Reminder.State.PENDING
    assert Reminder.objects.get(pk=reminder.pk).state == Reminder.State.SENT
    assert "the nurse lost the mail" in copy.history.first().history_change_reason


@pytest.mark.parametrize("state", [Reminder.State.PENDING, Reminder.State.SENDING, Reminder.State.CANCELLED])
def test_send_again_refuses_a_reminder_that_is_not_sent_or_failed(site, state):
    reminder = _schedule(site)
    Reminder.objects.filter(pk=reminder.pk).update(state=state, claimed_at=DUE, cancelled_at=DUE)
    with pytest.raises(DomainError) as refused:
        services.reminder_send_again(reminder=reminder, reason="x", by=UserFactory(role="Data manager"))
    assert refused.value.code == "reminder_not_finished"
