import zoneinfo

from django.db import DatabaseError
from django.utils import timezone

from trial.selectors import display_time_zone


class SiteTimezoneMiddleware:
    """Show times in the site's time zone; they are stored in UTC.

    The zone is the user's site when the trial has one site (this first trial), otherwise UTC
    until per-user site assignment exists. One indexed query per request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            timezone.activate(zoneinfo.ZoneInfo(display_time_zone()))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, DatabaseError):
            # An unknown zone, or the database is down (/healthz must still answer): show UTC.
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
