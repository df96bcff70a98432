"""Django's ModelBackend, with a user's permissions read in one query instead of two.

Every API request checks a role permission; Django's backend reads the user's own permissions and their
groups' permissions in two queries. This one reads both in one (the same set: codenames of the user's
permissions and of every group's the user is in), cached on the user object for the request as Django
caches it. Superusers and inactive users behave as in Django.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models import Q


class OneQueryModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                permissions = Permission.objects.all()
            else:
                # Two id subqueries, not an OR across two joins (which needs a DISTINCT over their product).
                own = get_user_model().user_permissions.through.objects.filter(user_id=user_obj.pk)
                grouped = Group.permissions.through.objects.filter(group__user=user_obj)
                permissions = Permission.objects.filter(
                    Q(pk__in=own.values("permission_id")) | Q(pk__in=grouped.values("permission_id"))
                )
            rows = permissions.values_list("content_type__app_label", "codename").order_by()
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in rows}
        return user_obj._perm_cache
