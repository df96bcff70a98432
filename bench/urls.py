"""The application's URLs plus ``/bench/bare/``: a bare ``JsonResponse`` of 50 rows, the yardstick."""

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as application

ROWS = [{"id": n, "study_id": f"9137-{n:03d}", "grade": 1 + n % 5, "serious": n % 7 == 0} for n in range(50)]


def bare(request):
    return JsonResponse({"count": len(ROWS), "results": ROWS})


urlpatterns = [path("bench/bare/", bare), *application]
