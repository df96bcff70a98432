import pytest
from django.contrib.auth.models import Group

from core.roles import ROLE_PERMISSIONS, ROLES, SPONSOR
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _perms(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_every_role_exists_as_a_group_created_by_the_migrations():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def _existing() -> set[str]:
    from django.contrib.auth.models import Permission

    return {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_holds_exactly_its_permissions(role):
    assert _perms(Group.objects.get(name=role)) == set(ROLE_PERMISSIONS[role]) & _existing()


def test_no_role_may_delete_anything():
    for role in ROLES:
        assert not {p for p in _perms(Group.objects.get(name=role)) if ".delete_" in p}, role


def test_a_sponsor_reads_the_protocol_but_cannot_change_it():
    sponsor = UserFactory(role=SPONSOR)
    assert sponsor.has_perm("trial.view_trial")
    assert not sponsor.has_perm("trial.change_trial")
    assert not sponsor.has_perm("trial.add_doselevel")


def test_create_role_user_command_makes_a_staff_user_in_that_group(capsys, nct_trial):
    import json

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command(
        "create_role_user", "nurse1", "--role", "Site staff", "--first-name", "Li", "--site", "HelpThera", "--token"
    )
    printed = json.loads(capsys.readouterr().out)
    user = get_user_model().objects.get(username="nurse1")
    assert user.is_staff and user.check_password(printed["password"])
    assert list(user.groups.values_list("name", flat=True)) == ["Site staff"]
    assert printed["token"]


def test_a_sponsor_user_gets_no_admin_access_because_the_admin_shows_identifiers(capsys, nct_trial):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("create_role_user", "sponsor1", "--role", SPONSOR, "--trial", "NCT06949137", "--token")
    assert get_user_model().objects.get(username="sponsor1").is_staff is False
