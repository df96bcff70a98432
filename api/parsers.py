"""The API's JSON parser: the nesting depth is checked before the body is decoded.

Python's ``json`` recurses once per level, so a body of 3,000 nested brackets raised ``RecursionError``
(a 500) on every JSON write endpoint. The depth is counted first, on the raw text and without
recursion (strings are skipped as whole tokens, so brackets inside them do not count): anything
deeper than ``API_JSON_MAX_DEPTH`` (64; the deepest request body the API takes is 3 levels) is a 400
``nesting_too_deep`` and is never decoded. The size is limited earlier still, before the view runs
(``api.middleware.RequestBodyLimitMiddleware``, 413).
"""

import json
import re

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

from core.errors import ErrorCode

# A JSON string (escapes included) or one bracket: the scan steps over strings whole.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPEN, _CLOSE = frozenset("[{"), frozenset("]}")


class NestingTooDeep(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = ErrorCode.NESTING_TOO_DEEP
    default_detail = "The JSON body is nested too deeply."


def nesting_exceeds(text: str, limit: int) -> bool:
    """Does ``text`` open more than ``limit`` arrays/objects inside one another? (Stops at the first excess.)"""
    depth = 0
    for match in _TOKENS.finditer(text):
        lexeme = match.group()
        if lexeme in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif lexeme in _CLOSE:
            depth -= 1
    return False


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number.")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with the depth limit checked before decoding; NaN and Infinity are refused."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not {encoding} text.") from exc
        limit = settings.API_JSON_MAX_DEPTH
        if nesting_exceeds(text, limit):
            raise NestingTooDeep(f"The JSON body is nested more than {limit} levels deep; nothing was read.")
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:  # JSONDecodeError, a constant, or an integer of more than 4,300 digits
            raise ParseError(f"JSON parse error - {exc}") from exc
