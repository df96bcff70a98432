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

EVERY_PERMISSION_SQL = """
SELECT ct.app_label, p.codename
FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
"""
# Two id subqueries, not an OR across two joins (which needs a DISTINCT over their product).
USER_PERMISSIONS_SQL = """
SELECT ct.app_label, p.codename
FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
WHERE p.id IN (SELECT permission_id FROM auth_user_user_permissions WHERE user_id = %(user)s)
   OR p.id IN (SELECT g.permission_id FROM auth_group_permissions g
               JOIN auth_user_groups m ON m.group_id = g.group_id WHERE m.user_id = %(user)s)
"""


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
