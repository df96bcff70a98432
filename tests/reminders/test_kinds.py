import pytest

from reminders.kinds import KINDS, NON_SAFETY_KINDS, dedupe_key, kind_for, retry_delay_seconds


@pytest.mark.parametrize(
    ("attempt", "base", "expected"),
    [(1, 60, 60), (2, 60, 120), (3, 60, 240), (6, 60, 1920), (7, 60, 3600), (20, 60, 3600), (1, 0, 0)],
)
def test_the_backoff_doubles_from_the_base_and_stops_at_one_hour(attempt, base, expected):
    assert retry_delay_seconds(attempt, base=base) == expected


def test_the_backoff_counts_attempts_from_one():
    with pytest.raises(ValueError, match="1-based"):
        retry_delay_seconds(0, base=60)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "visit:42:visit-window-opens"),
        ({"user_id": 7}, "visit:42:visit-window-opens:user:7"),
        ({"stage": "12h"}, "visit:42:visit-window-opens:12h"),
        ({"user_id": 7, "stage": "12h"}, "visit:42:visit-window-opens:user:7:12h"),
    ],
)
def test_the_dedupe_key_names_subject_kind_and_if_any_user_and_stage(kwargs, expected):
    assert dedupe_key("visit:42", "visit-window-opens", **kwargs) == expected


@pytest.mark.parametrize(
    "key",
    ["dlt-decision", "review-signature", "review-target", "sponsor-notice", "sponsor-notice-12h",
     "sponsor-notice-overdue", "susar-report", "susar-report-overdue", "signing-lockout", "decision-effective"],
)  # fmt: skip
def test_reporting_clocks_dlt_decisions_and_signatures_are_safety_kinds(key):
    assert kind_for(key).safety
    assert key not in NON_SAFETY_KINDS


@pytest.mark.parametrize("key", ["visit-window-opens", "visit-window-closes", "visit-missed", "reconsent"])
def test_follow_up_kinds_are_not_safety_kinds_and_can_be_muted(key):
    assert not kind_for(key).safety
    assert key in NON_SAFETY_KINDS


def test_every_kind_has_either_a_role_or_is_sent_to_one_user_and_its_text_names_label_and_when():
    for kind in KINDS.values():
        assert kind.per_user == (kind.role == "")
        assert "{label}" in kind.text
        assert "{when}" in kind.text


def test_an_unknown_kind_is_refused():
    with pytest.raises(KeyError):
        kind_for("no-such-kind")
