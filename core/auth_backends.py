"""Django's ModelBackend, with a user's permissions read in one query instead of two.

Every API request checks a role permission; Django's backend reads the user's own permissions and their
groups' permissions in two queries. This one reads both in one (the same set: codenames of the user's
permissions and of every group's the user is in), cached on the user object for the request as Django
caches it. Superusers and inactive users behave as in Django.
"""

# ruff: noqa: S608 - the statement names tables from the models' meta; the user id is a parameter

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


@cache
def _permissions_sql() -> str:
    """The user's own and her groups' permissions: two id subqueries, not an OR across two joins (which needs a
    DISTINCT over their product). Written once as SQL (table names from the models): compiling the same query
    in the ORM cost more than running it, on every API request."""
    q = connection.ops.quote_name
    own = get_user_model().user_permissions.through._meta
    member = get_user_model().groups.through._meta
    granted = Group.permissions.through._meta
    return (
        f"SELECT ct.{q('app_label')}, p.{q('codename')} FROM {q(Permission._meta.db_table)} p "
        f"JOIN {q(ContentType._meta.db_table)} ct ON ct.{q('id')} = p.{q('content_type_id')} "
        f"WHERE p.{q('id')} IN (SELECT {q('permission_id')} FROM {q(own.db_table)} WHERE {q('user_id')} = %s) "
        f"OR p.{q('id')} IN (SELECT g.{q('permission_id')} FROM {q(granted.db_table)} g "
        f"JOIN {q(member.db_table)} m ON m.{q('group_id')} = g.{q('group_id')} WHERE m.{q('user_id')} = %s)"
    )


class OneQueryModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                rows = Permission.objects.values_list("content_type__app_label", "codename").order_by()
            else:
                with connection.cursor() as cursor:
                    cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                    rows = cursor.fetchall()
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in rows}
        return user_obj._perm_cache
