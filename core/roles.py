"""The roles of the trial team and exactly the permissions each one holds.

``ROLE_PERMISSIONS`` is the single source of truth. Data migrations call ``sync_roles`` so that
every database has exactly these groups with exactly these permissions; a migration that adds
models adds a ``sync_roles`` step after it. Nobody but a superuser deletes clinical records.
"""

SITE_STAFF = "Site staff"
INVESTIGATOR = "Investigator"
SAFETY_COMMITTEE = "Safety committee"
SPONSOR = "Sponsor"
DATA_MANAGER = "Data manager"
ROLES = (SITE_STAFF, INVESTIGATOR, SAFETY_COMMITTEE, SPONSOR, DATA_MANAGER)

PROTOCOL_MODELS = ("trial", "site", "doselevel", "eligibilitycriterion", "visitdefinition")


def _perms(app: str, actions: tuple[str, ...], models: tuple[str, ...]) -> set[str]:
    return {f"{app}.{action}_{model}" for action in actions for model in models}


_READ_PROTOCOL = _perms("trial", ("view",), PROTOCOL_MODELS)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    SITE_STAFF: frozenset(_READ_PROTOCOL),
    INVESTIGATOR: frozenset(_READ_PROTOCOL),
    SAFETY_COMMITTEE: frozenset(_READ_PROTOCOL),
    SPONSOR: frozenset(_READ_PROTOCOL),
    # The data manager keeps the protocol's parameters current (with a reason for each change).
    DATA_MANAGER: frozenset(
        _READ_PROTOCOL | _perms("trial", ("add", "change"), PROTOCOL_MODELS) | {"core.view_heartbeat"}
    ),
}


def sync_roles(apps, schema_editor=None) -> None:
    """Make the role groups hold exactly ``ROLE_PERMISSIONS`` (usable as a RunPython step)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        perms = []
        for dotted in sorted(wanted):
            app_label, codename = dotted.split(".", 1)
            perm = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:  # models of a later migration get theirs in that migration's sync step
                perms.append(perm)
        group.permissions.set(perms)
