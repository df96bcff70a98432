import zoneinfo

from django.utils import timezone


class SiteTimezoneMiddleware:
    """Show times in the site's time zone; they are stored in UTC.

    The zone is the user's site when the trial has one site (this first trial), otherwise UTC
    until per-user site assignment exists. One indexed query per request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from trial.selectors import display_time_zone

        name = display_time_zone()
        try:
            timezone.activate(zoneinfo.ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
