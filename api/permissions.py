"""Who may call what, for every app's API, and who may read what.

The services check the acting user's permission themselves; these classes answer 401/403 before a
view runs, with the same permission codes.
"""

from rest_framework.permissions import BasePermission, DjangoModelPermissions

from core.roles import SPONSOR


class RolePermissions(DjangoModelPermissions):
    """Model permissions of the user's role, reads included.

    DRF's DjangoModelPermissions lets any authenticated user read; here a read needs the model's
    ``view`` permission too, so a role sees only what its group grants.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class RoleActionPermissions(RolePermissions):
    """``RolePermissions``, except that a custom action names the permissions it needs.

    ``view.action_perms`` maps an action name to the permission codes (the same ones its service
    checks); any other action falls back to the model permissions of the view's queryset.
    """

    def has_permission(self, request, view) -> bool:
        needed = getattr(view, "action_perms", {}).get(getattr(view, "action", None))
        if needed is None:
            return super().has_permission(request, view)
        return _has_perms(self, request, needed)


class PermsRequired(BasePermission):
    """For plain API views: the user needs every code in ``view.required_perms``."""

    def has_permission(self, request, view) -> bool:
        return _has_perms(self, request, view.required_perms)


def _has_perms(permission: BasePermission, request, needed) -> bool:
    user = request.user
    if not user or not user.is_authenticated:
        return False  # DRF answers 401 when no credentials were given
    if user.has_perms(needed):
        return True
    permission.message = "Your role does not allow this action."
    return False


def is_sponsor(user) -> bool:
    """In the Sponsor group? Asked once per user object (a request's user lives for the request)."""
    if getattr(user, "_api_is_sponsor", None) is None:
        user._api_is_sponsor = user.groups.filter(name=SPONSOR).exists()
    return user._api_is_sponsor


def sees_direct_identifiers(user) -> bool:
    """May ``user`` see a participant's direct identifiers (initials, birth date, screening number)?

    Only a role that may change participants, and never a sponsor: sponsors, the committee and the
    data manager know participants by study ID.
    """
    return user.has_perm("cohorts.change_participant") and not is_sponsor(user)


def sees_bedside_detail(user) -> bool:
    """May ``user`` see what happened at the bedside (vital signs, interruptions, premedication, the nurse)?

    Every role that reads vital signs, never a sponsor. Not the same question as
    ``sees_direct_identifiers``: the committee and the data manager see this, but not identifiers.
    """
    return user.has_perm("cohorts.view_vitalsigns") and not is_sponsor(user)
