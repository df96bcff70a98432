"""Password guessing on the admin and dashboard login is locked out (django-axes); a data manager unlocks it."""

import pytest
from axes.models import AccessAttempt

from core.errors import DomainError
from core.lockouts import lockout_release
from core.models import LockoutRelease
from core.roles import DATA_MANAGER, SITE_STAFF
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def _login(client, username, password, path="/admin/login/"):
    return client.post(path, {"username": username, "password": password, "next": "/admin/"})


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize(("wrong", "locked"), [(4, False), (5, True)])
def test_after_five_wrong_passwords_even_the_right_one_is_refused(client, wrong, locked):
    UserFactory(username="nurse", role=SITE_STAFF)
    for attempt in range(1, wrong + 1):  # the 5th failure itself answers with the lockout page
        assert _login(client, "nurse", "wrong password").status_code == (429 if attempt == 5 else 200)
        assert not _logged_in(client)
    response = _login(client, "nurse", PASSWORD)
    assert _logged_in(client) is not locked
    if locked:
        assert response.status_code == 429
        assert b"Login locked" in response.content and b"Lockout releases" in response.content


def test_the_lock_holds_for_that_username_and_address_only(client):
    UserFactory(username="nurse", role=SITE_STAFF)
    UserFactory(username="other", role=SITE_STAFF)
    for _ in range(5):
        _login(client, "nurse", "wrong password")
    _login(client, "other", PASSWORD)
    assert _logged_in(client)
    client.logout()
    other_address = client.post(
        "/admin/login/", {"username": "nurse", "password": PASSWORD, "next": "/admin/"}, REMOTE_ADDR="10.1.2.3"
    )
    assert other_address.status_code == 302


def test_the_dashboard_login_is_locked_the_same_way(client):
    UserFactory(username="nurse", role=SITE_STAFF)
    for _ in range(5):
        _login(client, "nurse", "wrong password", path="/accounts/login/")
    assert _login(client, "nurse", PASSWORD, path="/accounts/login/").status_code == 429
    assert not _logged_in(client)


def test_a_data_manager_unlocks_a_login_in_the_admin_and_the_release_is_recorded(client):
    UserFactory(username="nurse", role=SITE_STAFF)
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    for _ in range(5):
        _login(client, "nurse", "wrong password")
    assert AccessAttempt.objects.filter(username="nurse").exists()
    client.force_login(manager)
    assert client.get("/admin/axes/accessattempt/").status_code == 200
    added = client.post(
        "/admin/core/lockoutrelease/add/",
        {"kind": "login", "username": "nurse", "reason": "called the help desk; identity checked"},
    )
    assert added.status_code == 302
    release = LockoutRelease.objects.get()
    assert (release.username, release.released_by, release.kind) == ("nurse", manager, "login")
    assert release.reason == "called the help desk; identity checked"
    assert not AccessAttempt.objects.filter(username="nurse").exists()
    client.logout()
    _login(client, "nurse", PASSWORD)
    assert _logged_in(client)


def test_an_unlock_needs_a_reason_and_the_data_managers_permission():
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    with pytest.raises(DomainError) as refused:
        lockout_release(kind="login", username="nurse", by=manager, reason=" ")
    assert refused.value.code == "reason_required"
    with pytest.raises(DomainError) as refused:
        lockout_release(kind="login", username="nurse", by=UserFactory(role=SITE_STAFF), reason="x")
    assert refused.value.code == "permission_denied"
    assert not LockoutRelease.objects.exists()


def test_a_release_cannot_be_changed_or_deleted_in_the_admin(client):
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    release = lockout_release(kind="login", username="nurse", by=manager, reason="checked")
    client.force_login(UserFactory(username="root", is_superuser=True))
    page = client.get(f"/admin/core/lockoutrelease/{release.pk}/change/")
    assert page.status_code == 200 and b'name="reason"' not in page.content
    assert client.get(f"/admin/core/lockoutrelease/{release.pk}/delete/").status_code == 403


def test_a_data_manager_unlocks_from_the_failed_logins_list_with_a_reason(client):
    UserFactory(username="nurse", role=SITE_STAFF)
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    for _ in range(5):
        _login(client, "nurse", "wrong password")
    attempt = AccessAttempt.objects.get(username="nurse")
    client.force_login(manager)
    listing = client.get("/admin/axes/accessattempt/")
    assert b"Unlock these logins" in listing.content
    ask = client.post("/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": [attempt.pk]})
    assert ask.status_code == 200 and b"Unlock logins" in ask.content
    client.post(
        "/admin/axes/accessattempt/",
        {"action": "unlock", "_selected_action": [attempt.pk], "apply": "yes", "reason": "identity checked"},
    )
    assert LockoutRelease.objects.get().username == "nurse"
    assert not AccessAttempt.objects.exists()
    client.logout()
    _login(client, "nurse", "wrong again")
    again = AccessAttempt.objects.get(username="nurse")
    client.force_login(UserFactory(username="root", is_superuser=True))
    assert client.get(f"/admin/axes/accessattempt/{again.pk}/delete/").status_code == 403, "no silent unlock"
