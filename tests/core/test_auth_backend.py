"""The one-query permission backend gives the same permissions as Django's ModelBackend, in one query."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType

from core.auth_backends import EVERY_PERMISSION_SQL, USER_PERMISSIONS_SQL, OneQueryModelBackend

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    person = get_user_model().objects.create_user("perm-check", password="x" * 12)
    group = Group.objects.create(name="perm-check group")
    group.permissions.add(*Permission.objects.filter(codename__in=["view_trial", "add_site"]))
    person.groups.add(group)
    person.user_permissions.add(Permission.objects.get(codename="change_site"))
    return get_user_model().objects.get(pk=person.pk)


def test_own_and_group_permissions_are_those_django_gives(user, django_assert_num_queries):
    with django_assert_num_queries(1):
        mine = OneQueryModelBackend().get_all_permissions(user)
    expected = ModelBackend().get_all_permissions(get_user_model().objects.get(pk=user.pk))
    assert mine == expected
    assert {"trial.view_trial", "trial.add_site", "trial.change_site"} <= mine


def test_a_second_check_in_the_same_request_reads_nothing(user, django_assert_num_queries):
    backend = OneQueryModelBackend()
    backend.get_all_permissions(user)
    with django_assert_num_queries(0):
        assert backend.has_perm(user, "trial.view_trial")
        assert not backend.has_perm(user, "trial.delete_trial")


def test_an_inactive_user_has_no_permissions_and_a_superuser_has_all(user):
    user.is_active = False
    assert OneQueryModelBackend().get_all_permissions(user) == set()
    root = get_user_model().objects.create_superuser("perm-root", password="x" * 12)
    assert len(OneQueryModelBackend().get_all_permissions(root)) == Permission.objects.count()


def test_anonymous_users_and_object_checks_get_no_permissions_as_in_django(user):
    backend = OneQueryModelBackend()
    assert backend.get_all_permissions(AnonymousUser()) == set() == ModelBackend().get_all_permissions(AnonymousUser())
    assert backend.get_all_permissions(user, obj=user) == set()  # no object permissions, as ModelBackend
    assert not backend.has_perm(AnonymousUser(), "trial.view_trial")


def test_an_inactive_superuser_has_no_permissions(user):
    root = get_user_model().objects.create_superuser("perm-root-off", password="x" * 12, is_active=False)
    assert OneQueryModelBackend().get_all_permissions(root) == set()


def test_the_statements_read_the_models_own_tables_and_columns():
    User = get_user_model()
    own, members, grants = User.user_permissions.through, User.groups.through, Group.permissions.through
    for model in (Permission, ContentType, own, members, grants):
        assert f" {model._meta.db_table} " in USER_PERMISSIONS_SQL, model
    assert {Permission._meta.db_table, ContentType._meta.db_table} <= set(EVERY_PERMISSION_SQL.split())
    columns = [
        *[(own, "user"), (own, "permission"), (members, "user"), (members, "group")],
        *[(grants, "group"), (grants, "permission"), (Permission, "content_type"), (Permission, "codename")],
        (ContentType, "app_label"),
    ]
    for model, field in columns:
        assert model._meta.get_field(field).column in USER_PERMISSIONS_SQL, (model, field)
