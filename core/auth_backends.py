"""Django's ModelBackend, with a user's permissions read in one plain statement instead of two ORM queries.

Every API request checks a role permission; Django's backend reads the user's own permissions and their
groups' permissions in two queries. This one reads both in one (the same set: codenames of the user's
permissions and of every group's the user is in), cached on the user object for the request as Django
caches it. Superusers and inactive users behave as in Django. The statement is plain SQL over the models'
tables (``tests/core/test_auth_backend.py`` checks their names): it runs on every API request, and building
its queryset cost more than running it (``bench/summary_scale.py``).
"""

from django.contrib.auth.backends import ModelBackend
from django.db import connection

_PERMISSIONS = "FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id"
# Two id subqueries, not an OR across two joins (which needs a DISTINCT over their product).
_THE_USERS = """
WHERE p.id IN (SELECT permission_id FROM auth_user_user_permissions WHERE user_id = {user})
   OR p.id IN (SELECT g.permission_id FROM auth_group_permissions g
               JOIN auth_user_groups m ON m.group_id = g.group_id WHERE m.user_id = {user})
"""
EVERY_PERMISSION_SQL = f"SELECT ct.app_label, p.codename {_PERMISSIONS}"
USER_PERMISSIONS_SQL = f"SELECT ct.app_label, p.codename {_PERMISSIONS} {_THE_USERS.format(user='%(user)s')}"
# One text of "app_label.codename" names joined by commas (codenames and app labels hold no comma).
_AGGREGATE = {"postgresql": "string_agg({}, ',')", "sqlite": "group_concat({}, ',')"}


def permissions_column_sql(user: str) -> str:
    """A column for a statement that reads a user row aliased ``user``: that user's permissions as
    ``get_all_permissions`` reads them (every permission for a superuser), one text, NULL for none. The
    token statement reads them with the token's user, so an API request checks its role without a query of
    its own (``remember_permissions``)."""
    names = _AGGREGATE[connection.vendor].format("ct.app_label || '.' || p.codename")
    return (
        f"CASE WHEN {user}.is_superuser THEN (SELECT {names} {_PERMISSIONS})"
        f" ELSE (SELECT {names} {_PERMISSIONS} {_THE_USERS.format(user=f'{user}.id')}) END"
    )


def remember_permissions(user_obj, names: str | None) -> None:
    """Keep the permissions read by ``permissions_column_sql`` on the user object for this request, as
    ``get_all_permissions`` keeps what it reads (an inactive user still has none: the backend asks first)."""
    user_obj._perm_cache = set(names.split(",")) if names else set()


class OneQueryModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            statement = EVERY_PERMISSION_SQL if user_obj.is_superuser else USER_PERMISSIONS_SQL
            with connection.cursor() as cursor:
                cursor.execute(statement, {"user": user_obj.pk})
                user_obj._perm_cache = {f"{app}.{codename}" for app, codename in cursor.fetchall()}
        return user_obj._perm_cache
