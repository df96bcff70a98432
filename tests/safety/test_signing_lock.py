"""The signing lock tells how many tries are left, until when it holds, and how a data manager unlocks it."""

import pytest

from core.errors import DomainError
from core.lockouts import lockout_release
from core.models import LockoutRelease
from core.roles import DATA_MANAGER
from safety import services
from safety.models import SignOff
from tests.cohorts.test_infusions_support import HOUR, frozen
from tests.factories import UserFactory
from tests.safety.test_escalation_gate import AFTER_WINDOWS, PASSWORD, committee, reviewed  # noqa: F401

pytestmark = pytest.mark.django_db


def _sign(review, member, password):
    with frozen(AFTER_WINDOWS + HOUR):
        return services.review_sign(review=review, user=member, password=password, meaning="approve")


def _refusal(review, member, password) -> DomainError:
    with pytest.raises(DomainError) as refused:
        _sign(review, member, password)
    return refused.value


@pytest.fixture
def proposed(reviewed):  # noqa: F811
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    return reviewed, members


def test_each_wrong_password_says_how_many_tries_are_left(proposed):
    review, members = proposed
    messages = [_refusal(review, members[1], "wrong").message for _ in range(5)]
    assert [m.split("signed. ")[1].split(" ")[0] for m in messages[:4]] == ["4", "3", "2", "1"]
    assert "1 try left" in messages[3]
    assert "Signing is now locked for 30 minutes" in messages[4] and "Lockout releases" in messages[4]


def test_once_locked_the_right_password_is_refused_with_the_time_and_the_way_to_unlock(proposed):
    review, members = proposed
    for _ in range(5):
        _refusal(review, members[1], "wrong")
    refused = _refusal(review, members[1], PASSWORD)
    assert refused.code == "signing_locked"
    assert "locked until" in refused.message and "data manager can unlock" in refused.message


def test_a_data_managers_release_unlocks_signing_and_is_recorded(proposed):
    review, members = proposed
    for _ in range(5):
        _refusal(review, members[1], "wrong")
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    with frozen(AFTER_WINDOWS + HOUR):
        lockout_release(kind="signing", username=members[1].username, by=manager, reason="identity checked by phone")
    assert services.signing_tries_left(members[1]) == 5
    assert isinstance(_sign(review, members[1], PASSWORD), SignOff)
    release = LockoutRelease.objects.get()
    assert (release.user, release.released_by, release.kind) == (members[1], manager, "signing")


def test_releasing_one_members_signing_leaves_anothers_locked(proposed):
    review, members = proposed
    for member in members[1:]:
        for _ in range(5):
            _refusal(review, member, "wrong")
    with frozen(AFTER_WINDOWS + HOUR):
        lockout_release(
            kind="signing", username=members[1].username, by=UserFactory(role=DATA_MANAGER), reason="checked"
        )
    assert _refusal(review, members[2], PASSWORD).code == "signing_locked"


def test_a_signing_release_needs_an_existing_user():
    with pytest.raises(DomainError) as refused:
        lockout_release(kind="signing", username="nobody", by=UserFactory(role=DATA_MANAGER), reason="x")
    assert refused.value.code == "invalid"
