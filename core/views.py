from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from core.selectors import heartbeat_status


@require_GET
def healthz(request):
    """Liveness for the web process, the database and the Celery worker + beat pair."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception:  # any database failure means "not ok" here
        database = "unavailable"
    beat = heartbeat_status() if database == "ok" else None
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "heartbeat": None
        if beat is None
        else {
            "last_seen_at": beat.last_seen_at.isoformat() if beat.last_seen_at else None,
            "worker": beat.worker,
            "age_seconds": round(beat.age_seconds, 1) if beat.age_seconds is not None else None,
            "alive": beat.alive,
        },
    }
    return JsonResponse(body, status=200 if database == "ok" else 503)
