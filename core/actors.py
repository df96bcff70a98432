"""Named system actors: who a management command or a scheduled task acts as in the audit trail.

A history row written by ``load_protocol`` names ``system:load_protocol``, one written by a beat task
``system:beat``, so no row of the audit trail is left without a "who". A system actor is an ordinary
user row that cannot log in (inactive, no usable password). Its username holds a colon, which Django's
username validator refuses, so no person can be given (or register) a system actor's name.
"""

import getpass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

SYSTEM_PREFIX = "system:"
LOAD_PROTOCOL = "load_protocol"
LOAD_CTCAE_TERMS = "load_ctcae_terms"
BEAT = "beat"
CREATE_ROLE_USER = "create_role_user"
ENSURE_ADMIN = "ensure_admin"


def system_actor(name: str):
    """The user ``system:<name>``, created on first use (inactive, unusable password)."""
    user_model = get_user_model()
    username = f"{SYSTEM_PREFIX}{name}"
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user
    user = user_model(username=username, first_name="System", last_name=name, is_active=False)
    user.set_unusable_password()
    user._history_user = user
    user._change_reason = "System actor created on first use"
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # another process created it first
        return user_model.objects.get(username=username)
    return user


def os_user() -> str:
    """Who ran a management command, as the operating system knows them (for the history row's reason)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "an unknown OS user"


def is_system_actor(user) -> bool:
    return bool(user is not None and user.username.startswith(SYSTEM_PREFIX))
