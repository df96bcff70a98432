from django import template

from reminders import selectors

register = template.Library()


@register.simple_tag
def open_reminder_count(user) -> int:
    """How many of the reader's reminders are due and still needed (one COUNT query)."""
    return selectors.open_reminders_for_user(user).count()
