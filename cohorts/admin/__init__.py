"""Admin for site staff, one module per concept; importing this package registers every page.

Every write calls a service (``cohorts.services``); a refusal comes back on the form
(``core.admin.ServiceRefusalMixin``) or, for actions, with ``message_user``.
"""

from cohorts.admin import (  # noqa: F401
    cohorts,
    consent,
    follow_up,
    infusions,
    lost_to_follow_up,
    participants,
    screening,
)
from cohorts.admin.data_lock import DataLockAdminMixin

__all__ = ["DataLockAdminMixin"]
