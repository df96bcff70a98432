"""The API's body size limit, applied before anything reads the body.

A request under ``/api/`` whose ``Content-Length`` is over ``API_MAX_BODY_BYTES`` (1 MiB by default; the
largest body the API takes, a screening record with its fractures, is a few KB) answers 413
``payload_too_large`` as JSON without the body being read: no session, authentication or view runs.
Elsewhere Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` applies. Under WSGI a body without a
``Content-Length`` (chunked) is read as empty, so the header is the whole story.
"""

from django.conf import settings

from api.handlers import is_api, json_error
from core.errors import ErrorCode


def declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django reads a malformed length as no body, too


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.API_MAX_BODY_BYTES
        if is_api(request) and declared_length(request) > limit:
            return json_error(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"The request body is larger than {limit} bytes; nothing was read.",
                status=413,
            )
        return self.get_response(request)
