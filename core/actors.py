"""Named system actors: who the audit trail names when the system itself acts (a beat task's sweep).

A system actor is an ordinary user row, so every history row keeps a named ``history_user`` rather than
a null: ``system:beat`` for the scheduled tasks. It is inactive and has no usable password, so it can
never log in, and it holds no role. Services that act automatically pass it as ``by`` and give the
reason ``automatic: …`` (``core.history.automatic``).
"""

from django.contrib.auth import get_user_model

SYSTEM_PREFIX = "system:"
BEAT = "beat"


def system_actor(name: str = BEAT):
    """The user ``system:<name>``, created inactive and without a usable password on first use."""
    user, created = get_user_model().objects.get_or_create(
        username=f"{SYSTEM_PREFIX}{name}",
        defaults={"is_active": False, "first_name": "System", "last_name": f"({name})"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def is_system_actor(user) -> bool:
    return bool(user is not None and getattr(user, "username", "").startswith(SYSTEM_PREFIX))
