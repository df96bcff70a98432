"""Django's error views, answering the API's JSON error contract under ``/api/``.

Some errors never reach DRF's exception handler: a URL that matches no route (``/api/v1/participants/%00/``,
an id of 30 digits in ``reviews/<int:pk>/dossier.json``), a request Django itself refuses (too many form
fields, a suspicious header) and an unexpected exception. Under ``/api/`` they answer
``{"code", "message", "fields"}`` like every other API error; elsewhere (admin, dashboard) Django's own
pages stay. ``config.urls`` installs them as ``handler400``/``403``/``404``/``500``.
"""

from django.http import JsonResponse
from django.views import defaults

from api.exceptions import error_body
from core.errors import ErrorCode

API_PREFIX = "/api/"


def is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(code: ErrorCode, message: str, *, status: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if is_api(request):
        return json_error(ErrorCode.BAD_REQUEST, "The request was refused before it was read.", status=400)
    return defaults.bad_request(request, exception, template_name)


def permission_denied(request, exception, template_name=defaults.ERROR_403_TEMPLATE_NAME):
    if is_api(request):
        return json_error(ErrorCode.PERMISSION_DENIED, "You do not have permission to do this.", status=403)
    return defaults.permission_denied(request, exception, template_name)


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if is_api(request):
        return json_error(ErrorCode.NOT_FOUND, "Not found.", status=404)
    return defaults.page_not_found(request, exception, template_name)


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if is_api(request):
        return json_error(
            ErrorCode.SERVER_ERROR, "The server failed to answer; nothing was saved. It has been logged.", status=500
        )
    return defaults.server_error(request, template_name)
